"""The `supermarket` command. Subcommands import their modules lazily, so `convert` starts fast."""

import importlib
import sys

import click
from click.exceptions import NoArgsIsHelpError

# lake_contract loads no pyarrow itself; imported before any command does, it selects Arrow's
# allocator for this process and the ones it starts.
from lake_contract.pandas_free import leave_pandas_out

# name -> "module:command". Each module imports only click and the light defaults at the top,
# and its work inside the command, so listing them all for --help stays light too.
COMMANDS = {
    "generate": "supermarket_cli.commands.generate:generate",
    "lambda-runtime": "supermarket_cli.commands.realtime:lambda_runtime",
    "payment-processor": "supermarket_cli.commands.realtime:payment_processor",
    "replay-dlq": "supermarket_cli.commands.realtime:replay_dlq",
    "soak": "supermarket_cli.commands.soak:soak",
    "query": "supermarket_cli.commands.query:query",
    "up": "supermarket_cli.commands.stack:up",
    "status": "supermarket_cli.commands.stack:status",
    "down": "supermarket_cli.commands.stack:down",
    "convert": "supermarket_cli.commands.convert:convert",
    "dashboard": "supermarket_cli.commands.dashboard:dashboard",
    "fault-proxy": "supermarket_cli.commands.faults:fault_proxy",
    "infra": "supermarket_cli.commands.infra:infra",
    "package-lambda": "supermarket_cli.commands.infra:package_lambda",
    "cost": "supermarket_cli.commands.cost:cost",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported only when named or listed (click's documented
    lazy-loading pattern)."""

    def __init__(self, *args: object, lazy_subcommands: dict[str, str], **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.lazy_subcommands = lazy_subcommands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*super().list_commands(ctx), *self.lazy_subcommands]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = self.lazy_subcommands.get(cmd_name)
        if target is None:
            return super().get_command(ctx, cmd_name)
        module, name = target.split(":")
        return getattr(importlib.import_module(module), name)


class SupermarketGroup(LazyGroup):
    """The root group: a failure of a command becomes one line on stderr and an exit code."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except (FileNotFoundError, ValueError) as exc:
            return _failed(ctx, f"error: {exc}", 2)
        except KeyboardInterrupt:
            return 130
        except Exception as exc:
            # AWS said no (missing bucket, denied, unreachable endpoint): one line, not a
            # traceback. Matched by module so that commands which never touch AWS never import
            # botocore.
            if type(exc).__module__.startswith("botocore"):
                return _failed(ctx, f"AWS error: {exc}", 1)
            raise


def _failed(ctx: click.Context, message: str, code: int) -> int:
    print(f"supermarket {ctx.invoked_subcommand}: {message}", file=sys.stderr)
    return code


@click.group(
    cls=SupermarketGroup,
    lazy_subcommands=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
)
def cli() -> None:
    """The `supermarket` command. Subcommands import their modules lazily, so `convert` starts
    fast."""


def _usage_error(error: click.UsageError) -> None:
    """As argparse says it: the usage line, then `supermarket <command>: error: ...`."""
    if isinstance(error, NoArgsIsHelpError):  # no command given: the help, on stderr
        error.show()
        return
    ctx = error.ctx
    if ctx is not None:
        print(ctx.get_usage(), file=sys.stderr)
    prog = ctx.command_path if ctx is not None else "supermarket"
    print(f"{prog}: error: {error.format_message()}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Runs one command; its exit code. A usage error exits with code 2, as argparse did."""
    leave_pandas_out()  # before a command loads pyarrow, which would import pandas
    try:
        code = cli.main(argv, prog_name="supermarket", standalone_mode=False)
    except click.UsageError as error:
        _usage_error(error)
        raise SystemExit(error.exit_code) from None
    except click.Abort:  # Ctrl-C before any command ran
        return 130
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
