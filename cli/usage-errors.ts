import type { Command, CommanderError } from 'commander';
import { ErrorCodes, QilinError } from '../kernel/errors.js';

/** Turn commander's usage errors into QLN_CLI_USAGE (exit 2); help and version pass through. */
export function usageErrors(cmd: Command, help: string): Command {
  return cmd
    .showHelpAfterError(false)
    .configureOutput({ outputError: () => undefined })
    .exitOverride((err: CommanderError) => {
      if (
        err.code === 'commander.helpDisplayed' ||
        err.code === 'commander.help' ||
        err.code === 'commander.version'
      ) {
        throw err;
      }
      throw new QilinError(
        ErrorCodes.CLI_USAGE,
        `${err.message.replace(/^error: /, '')} (see ${help})`,
        { cause: err },
      );
    });
}
