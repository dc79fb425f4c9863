// Expected failures (bad input, bad usage) carry an exit code and a message that says what was wrong and
// what to do; the CLI prints them as one line. Anything else is a bug and keeps its stack trace.

/** Control characters (from names inside a damaged file) escaped, so that a message stays one printable line. */
function oneLine(message: string): string {
  return message.trim().replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export class LowbitError extends Error {
  constructor(message: string, readonly exitCode: 1 | 2 = 1) {
    super(oneLine(message));
    this.name = 'LowbitError';
  }
}

/** Bad command-line usage: exit code 2. */
export class UsageError extends LowbitError {
  constructor(message: string) {
    super(message, 2);
    this.name = 'UsageError';
  }
}
