// The CLI's tables: plain text (cli-table3's default colors put escape codes into files and pipes).

import Table from 'cli-table3';

export function textTable(head: string[]): Table.Table {
  return new Table({ head, style: { head: [], border: [] } });
}
