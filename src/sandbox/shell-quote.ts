// POSIX shell quoting for the strings SandboxManager.wrapWithSandbox returns.
// Single quotes only (as srt does since it dropped the npm shell-quote
// package): inside them every byte is literal, so `!`, `$`, backslashes and
// newlines reach the program unchanged under sh, bash, dash and zsh.

const BARE = /^[A-Za-z0-9_./:@+,%-][A-Za-z0-9_./:=@+,%-]*$/;

export function quoteArg(arg: string): string {
  if (arg === '') return "''";
  // A leading '=' is zsh's equals expansion, so it never goes bare.
  if (BARE.test(arg)) return arg;
  return "'" + arg.replace(/'/g, `'"'"'`) + "'";
}

export function quote(args: readonly string[]): string {
  return args.map(quoteArg).join(' ');
}
