// Expected failures (bad input, bad usage) carry an exit code and a message that says what was wrong and
// what to do; the CLI prints them as one line. Anything else is a bug and keeps its stack trace.

export class LowbitError extends Error {
  constructor(message: string, readonly exitCode: 1 | 2 = 1) {
    super(message);
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
