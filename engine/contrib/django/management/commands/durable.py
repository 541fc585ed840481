"""``manage.py durable <subcommand>``: the durable subset of the ``aws lambda`` CLI, served by the engine.

Subcommands and options carry the AWS CLI's names, output is the AWS CLI's JSON (indent 4,
ISO 8601 timestamps), and exit statuses follow the AWS CLI: 252 when the command line cannot
be parsed, 254 when the service answers with an error, 255 for anything else.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import os
import re
import sys
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, NoReturn

import psycopg
from django.core.management.base import BaseCommand, CommandError, CommandParser
from psycopg_pool import PoolTimeout

import engine
from engine import db, validation
from engine.api import SYNC_PAYLOAD_LIMIT, LambdaClient
from engine.errors import EngineError, ServiceError
from engine.runtimes.code import InvalidCode, zip_directory

EXIT_BAD_ARGUMENTS = 252
EXIT_SERVICE_ERROR = 254
EXIT_GENERAL = 255
ARGPARSE_ERROR = 2
PAGE_CAP = 1000  # the largest MaxItems every paginated engine operation accepts
PARAMETER_LIMIT = SYNC_PAYLOAD_LIMIT  # no option value is worth more than the largest payload
MAX_SHORTHAND_DEPTH = validation.MAX_JSON_DEPTH


class CliError(Exception):
    """A failure reported on stderr as the AWS CLI would, ending the command with ``status``."""

    status = EXIT_GENERAL


class UsageError(CliError):
    """A parameter value the CLI could not parse (the AWS CLI exits 252 for these)."""

    status = EXIT_BAD_ARGUMENTS


# --- parameter shapes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class MapOf:
    """A map shape: any string keys, values of one shape (e.g. ``Environment.Variables``)."""

    value: Any


# A shape is ``str``, ``int``, ``[shape]`` (a list), ``MapOf(shape)`` or ``{"Member": shape}``.
DURABLE_CONFIG = {"ExecutionTimeout": int, "RetentionPeriodInDays": int, "KMSKeyArn": str}
ENVIRONMENT = {"Variables": MapOf(str)}
ERROR_OBJECT = {"ErrorMessage": str, "ErrorType": str, "ErrorData": str, "StackTrace": [str]}
INVOKE_OUTPUT_KEYS = ("StatusCode", "FunctionError", "LogResult", "ExecutedVersion", "DurableExecutionArn")


class ShorthandParser:
    """Parse AWS CLI shorthand: ``Key=value,Map={K=V},List=[a,b]``, quotes and ``Key=a,b`` lists."""

    KEY = re.compile(r"[^\s=,{}\[\]'\"]+")
    KEY_AHEAD = re.compile(r"\s*[^\s=,{}\[\]'\"]+\s*=")

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.depth = 0

    def parse(self) -> dict[str, Any]:
        pairs = self._pairs(closer="")
        if self.pos < len(self.text):
            self._fail("','")
        return pairs

    def _pairs(self, closer: str) -> dict[str, Any]:
        pairs: dict[str, Any] = {}
        while True:
            self._skip_space()
            match = self.KEY.match(self.text, self.pos)
            if match is None:
                self._fail("a key")
            self.pos = match.end()
            self._expect("=")
            pairs[match.group()] = self._value(closer, implicit_list=True)
            if not self._accept(","):
                return pairs

    def _value(self, closer: str, implicit_list: bool) -> Any:
        self._skip_space()
        if self._peek() in ("{", "["):
            # Each level is a Python call: refuse deep text before it becomes a RecursionError.
            self.depth += 1
            if self.depth > MAX_SHORTHAND_DEPTH:
                raise ValueError(f"nested deeper than {MAX_SHORTHAND_DEPTH} levels")
            value = self._container()
            self.depth -= 1
            return value
        first = self._scalar(closer)
        items: list[Any] = [first]
        # "StackTrace=a,b" is a list unless the text after the comma starts a new "Key=".
        while implicit_list and self._peek() == "," and self._list_continues():
            self.pos += 1
            items.append(self._scalar(closer))
        return first if len(items) == 1 else items

    def _container(self) -> Any:
        if self._accept("{"):
            if self._accept("}"):
                return {}
            pairs = self._pairs("}")
            self._expect("}")
            return pairs
        self._expect("[")
        return self._list()

    def _list_continues(self) -> bool:
        rest = self.text[self.pos + 1 :]
        return bool(rest.strip()) and not self.KEY_AHEAD.match(rest)

    def _list(self) -> list[Any]:
        items: list[Any] = []
        if self._accept("]"):
            return items
        while True:
            items.append(self._value("]", implicit_list=False))
            if self._accept("]"):
                return items
            if not self._accept(","):
                self._fail("',' or ']'")

    def _scalar(self, closer: str) -> str:
        self._skip_space()
        if self._peek() in ("'", '"'):
            return self._quoted(self.text[self.pos])
        chars: list[str] = []
        stops = "," + closer
        while self.pos < len(self.text) and self.text[self.pos] not in stops:
            if self.text[self.pos] == "\\" and self.pos + 1 < len(self.text):
                self.pos += 1
            chars.append(self.text[self.pos])
            self.pos += 1
        return "".join(chars).strip()

    def _quoted(self, quote: str) -> str:
        self.pos += 1
        chars: list[str] = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if char == "\\" and self.pos + 1 < len(self.text):
                chars.append(self.text[self.pos + 1])
                self.pos += 2
                continue
            self.pos += 1
            if char == quote:
                self._skip_space()
                return "".join(chars)
            chars.append(char)
        self._fail(f"closing {quote}")

    def _peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _skip_space(self) -> None:
        while self._peek().isspace():
            self.pos += 1

    def _accept(self, char: str) -> bool:
        self._skip_space()
        if self._peek() == char:
            self.pos += 1
            return True
        return False

    def _expect(self, char: str) -> None:
        if not self._accept(char):
            self._fail(f"'{char}'")

    def _fail(self, expected: str) -> NoReturn:
        received = self._peek() or "EOF"
        raise ValueError(f"Expected: {expected}, received: '{received}' for input:\n{self.text}\n{' ' * self.pos}^")


def conform(value: Any, shape: Any, path: str, shorthand: bool) -> Any:
    """Check ``value`` against ``shape`` as botocore does; shorthand text is converted to ints and lists."""
    if isinstance(shape, dict):
        members = _mapping(value, path)
        unknown = [key for key in members if key not in shape]
        if unknown:
            raise ValueError(f'Unknown parameter in {path}: "{unknown[0]}", must be one of: {", ".join(shape)}')
        return {key: conform(item, shape[key], f"{path}.{key}", shorthand) for key, item in members.items()}
    if isinstance(shape, MapOf):
        return {
            key: conform(item, shape.value, f"{path}.{key}", shorthand) for key, item in _mapping(value, path).items()
        }
    if isinstance(shape, list):
        items = [value] if shorthand and isinstance(value, str) else value
        if not isinstance(items, list):
            raise ValueError(_bad_type(path, value, "list"))
        return [conform(item, shape[0], f"{path}[{index}]", shorthand) for index, item in enumerate(items)]
    if shape is int:
        if shorthand and isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ValueError(_bad_type(path, value, "int"))
    if not isinstance(value, str):
        raise ValueError(_bad_type(path, value, "str"))
    return value


def _mapping(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(_bad_type(path, value, "dict"))
    return value


def _bad_type(path: str, value: Any, expected: str) -> str:
    return f"Invalid type for parameter {path}, value: {value!r}, type: {type(value).__name__}, valid types: {expected}"


# --- reading option values ----------------------------------------------------------------------


def _param_text(value: str, option: str) -> str:
    """Return the option's text, reading ``file://path`` as the AWS CLI does."""
    if not value.startswith("file://"):
        return value
    try:
        return Path(value[len("file://") :]).expanduser().read_text()
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, or a NUL byte in the path
        raise UsageError(f"Error parsing parameter '{option}': Unable to load paramfile {value}: {exc}") from exc


def structure(value: str | None, option: str, member: str, shape: Mapping[str, Any]) -> dict[str, Any] | None:
    """Parse a structure option given as JSON or as shorthand (``Key=value,...``)."""
    if value is None:
        return None
    text = _param_text(value, option)
    as_json = text.lstrip().startswith(("{", "["))
    try:
        parsed = parse_json(text) if as_json else ShorthandParser(text).parse()
    except validation.InvalidInput as exc:
        raise UsageError(
            f"Error parsing parameter '{option}': Invalid JSON: {exc}\nJSON received: {_shown(text)}"
        ) from exc
    except ValueError as exc:
        raise UsageError(f"Error parsing parameter '{option}': {exc}") from exc
    try:
        structured: dict[str, Any] = conform(parsed, shape, member, shorthand=not as_json)
        return structured
    except ValueError as exc:
        raise UsageError(f"Parameter validation failed:\n{exc}") from exc


def blob(value: str | None, option: str, binary_format: str | None) -> bytes | None:
    """Return a blob option's bytes: ``fileb://`` raw, else text (base64-decoded with ``--cli-binary-format base64``)."""
    if value is None:
        return None
    if value.startswith("fileb://"):
        try:
            return Path(value[len("fileb://") :]).expanduser().read_bytes()
        except (OSError, ValueError) as exc:
            raise UsageError(f"Error parsing parameter '{option}': Unable to load paramfile {value}: {exc}") from exc
    text = _param_text(value, option)
    try:
        # Arguments that were not UTF-8 reach Python as lone surrogates (surrogateescape).
        raw = text.encode()
    except UnicodeEncodeError as exc:
        raise UsageError(f"Error parsing parameter '{option}': not valid UTF-8 text (byte {exc.start}).") from exc
    if binary_format != "base64":
        return raw
    try:
        return base64.b64decode(raw, validate=True)
    except binascii.Error as exc:
        raise UsageError(f"Error parsing parameter '{option}': Invalid base64: {text!r}") from exc


def json_payload(value: str | None, binary_format: str | None) -> bytes | None:
    """Return ``--payload`` bytes, refusing text that is not JSON before anything is sent."""
    payload = blob(value, "--payload", binary_format)
    if not payload:
        return payload
    try:
        parse_json(payload)
    except validation.InvalidInput as exc:
        shown = _shown(payload.decode(errors="replace"))
        raise UsageError(f"Error parsing parameter '--payload': Invalid JSON: {exc}\nJSON received: {shown}") from exc
    return payload


def parse_json(text: str | bytes) -> Any:
    """Strict JSON, as the engine reads it: no NaN or Infinity, at most 64 levels deep, UTF-8."""
    return validation.parse_json_text(text, "Value", max_bytes=PARAMETER_LIMIT)


def _shown(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def timestamp(value: str) -> datetime:
    """argparse type: ISO 8601 text or epoch seconds, as the AWS CLI accepts (naive means UTC)."""
    try:
        return validation.parse_datetime_text(value, "timestamp", epoch_seconds=True)
    except validation.InvalidInput as exc:
        problem = exc.problem.rstrip(".")
        raise argparse.ArgumentTypeError(
            f"invalid timestamp {value!r}: {problem}; use ISO 8601 or epoch seconds"
        ) from exc


def positive_int(value: str) -> int:
    """argparse type for --max-items and --page-size."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value!r}")
    return number


def string_list(values: list[str] | None) -> list[str] | None:
    """Accept ``--statuses A B``, ``--statuses A,B`` or JSON ``["A","B"]``."""
    if values is None:
        return None
    if len(values) == 1 and values[0].lstrip().startswith("["):
        try:
            return [str(item) for item in parse_json(values[0])]
        except validation.InvalidInput as exc:
            raise UsageError(f"Error parsing parameter '--statuses': Invalid JSON: {exc}") from exc
    return [item for value in values for item in value.split(",") if item]


def given(**params: Any) -> dict[str, Any]:
    """Drop parameters the user did not pass, so the engine applies its defaults."""
    return {key: value for key, value in params.items() if value is not None}


# --- output --------------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode(errors="replace")
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def to_json(response: Mapping[str, Any]) -> str:
    text = json.dumps(response, indent=4, ensure_ascii=False, default=_json_default)
    try:
        text.encode()
    except UnicodeEncodeError:  # a lone surrogate in stored data cannot be printed raw: escape it
        text = json.dumps(response, indent=4, default=_json_default)
    return text


def paginate(
    call: Callable[..., dict[str, Any]], result_key: str, args: argparse.Namespace, **params: Any
) -> dict[str, Any]:
    """Follow NextMarker as the AWS CLI does: every page, or ``--max-items`` items and then a NextToken."""
    items: list[Any] = []
    marker = args.starting_token
    while True:
        want = args.page_size
        if args.max_items is not None:
            # Asking for exactly what is left makes the service's NextMarker a precise resume point.
            remaining = min(args.max_items - len(items), PAGE_CAP)
            want = remaining if want is None else min(want, remaining)
        page = call(**params, **given(Marker=marker, MaxItems=want))
        items.extend(page[result_key])
        marker = page.get("NextMarker")
        if not marker or (args.max_items is not None and len(items) >= args.max_items):
            break
    output: dict[str, Any] = {result_key: items}
    if marker:
        output["NextToken"] = marker
    return output


# --- options of each subcommand -----------------------------------------------------------------

CODE_DIR = "A local folder, zipped here as the function's code (Durable Lab's own; for quick work)."
IGNORED = "Accepted for compatibility with the AWS CLI; ignored by Durable Lab."


def _function_name(parser: CommandParser) -> None:
    parser.add_argument("--function-name", required=True, help="Function name or ARN.")


def _execution_arn(parser: CommandParser) -> None:
    parser.add_argument("--durable-execution-arn", required=True, help="ARN of the durable execution.")


def _pagination(parser: CommandParser) -> None:
    parser.add_argument(
        "--max-items", type=positive_int, help="Total items to print; prints a NextToken when more remain."
    )
    parser.add_argument("--starting-token", "--marker", dest="starting_token", help="NextToken of a previous call.")
    parser.add_argument("--page-size", type=positive_int, help="Items per service call (does not limit the total).")


def _binary_format(parser: CommandParser) -> None:
    parser.add_argument(
        "--cli-binary-format",
        choices=("raw-in-base64-out", "base64"),
        help="Blob input: raw text (default) or base64 text.",
    )


def _configuration_args(parser: CommandParser, creating: bool) -> None:
    _function_name(parser)
    parser.add_argument(
        "--handler", required=creating, help="Python handler, module.attribute (e.g. demos.hello.handler)."
    )
    parser.add_argument("--timeout", type=int, help="Seconds one invocation may run (1-900).")
    parser.add_argument("--description", help="Free text, at most 256 characters.")
    parser.add_argument(
        "--durable-config", help="ExecutionTimeout=<s>,RetentionPeriodInDays=<d> or JSON; makes it durable."
    )
    parser.add_argument("--environment", help="Variables={KEY=value,KEY2=value2} or JSON.")
    parser.add_argument(
        "--runtime", help="python3.11, python3.12, python3.13 or nodejs22.x: with --zip-file, its own runtime process."
    )
    for option in ("--role", "--memory-size"):
        parser.add_argument(option, help=IGNORED)


def _create_function_args(parser: CommandParser) -> None:
    _configuration_args(parser, creating=True)
    code = parser.add_mutually_exclusive_group()
    code.add_argument(
        "--zip-file", help="fileb://function.zip: the function's code, run by --runtime (else --handler is imported)."
    )
    code.add_argument("--code-dir", help=CODE_DIR)
    parser.add_argument("--code", help=IGNORED)
    parser.add_argument("--publish", action=argparse.BooleanOptionalAction, help=IGNORED)


def _update_function_code_args(parser: CommandParser) -> None:
    _function_name(parser)
    code = parser.add_mutually_exclusive_group(required=True)
    code.add_argument("--zip-file", help="fileb://function.zip: the function's new code.")
    code.add_argument("--code-dir", help=CODE_DIR)
    parser.add_argument("--revision-id", help="Update only if the function's RevisionId still matches.")
    parser.add_argument("--publish", action=argparse.BooleanOptionalAction, help=IGNORED)


def _update_function_args(parser: CommandParser) -> None:
    _configuration_args(parser, creating=False)
    parser.add_argument("--revision-id", help="Update only if the function's RevisionId still matches.")


def _get_function_args(parser: CommandParser) -> None:
    _function_name(parser)
    parser.add_argument("--qualifier", help="Version or alias ($LATEST only).")


def _list_functions_args(parser: CommandParser) -> None:
    parser.add_argument("--master-region", help=IGNORED)
    parser.add_argument("--function-version", help=IGNORED)
    _pagination(parser)


def _invoke_args(parser: CommandParser) -> None:
    _function_name(parser)
    parser.add_argument("--payload", help="JSON input of the function (or file://path, fileb://path).")
    parser.add_argument("--invocation-type", help="RequestResponse (default, waits for the result), Event or DryRun.")
    parser.add_argument("--durable-execution-name", help="Idempotency name of the durable execution.")
    parser.add_argument("--qualifier", help="Version or alias ($LATEST only).")
    parser.add_argument("--log-type", help="None or Tail.")
    parser.add_argument("--client-context", help="Base64 client context.")
    _binary_format(parser)
    parser.add_argument(
        "outfile",
        nargs="?",
        help='File the response payload is written to; without it the payload is printed as "Payload".',
    )


def _get_execution_args(parser: CommandParser) -> None:
    _execution_arn(parser)
    parser.add_argument(
        "--include-execution-data",
        action=argparse.BooleanOptionalAction,
        help="Input and result are always included by Durable Lab.",
    )


def _history_args(parser: CommandParser) -> None:
    _execution_arn(parser)
    parser.add_argument(
        "--include-execution-data",
        action=argparse.BooleanOptionalAction,
        help="Include step and callback payloads in the events.",
    )
    parser.add_argument("--reverse-order", action=argparse.BooleanOptionalAction, help="Newest event first.")
    _pagination(parser)


def _state_args(parser: CommandParser) -> None:
    _execution_arn(parser)
    parser.add_argument("--checkpoint-token", required=True, help="The execution's current checkpoint token.")
    _pagination(parser)


def _list_executions_args(parser: CommandParser) -> None:
    _function_name(parser)
    parser.add_argument("--qualifier", help="Version or alias ($LATEST only).")
    parser.add_argument("--durable-execution-name", help="Only executions of this name.")
    parser.add_argument(
        "--statuses",
        nargs="+",
        metavar="STATUS",
        help="Space separated: RUNNING PAUSING PAUSED SUCCEEDED FAILED TIMED_OUT STOPPED.",
    )
    parser.add_argument("--started-after", type=timestamp, help="ISO 8601 time or epoch seconds.")
    parser.add_argument("--started-before", type=timestamp, help="ISO 8601 time or epoch seconds.")
    parser.add_argument("--reverse-order", action=argparse.BooleanOptionalAction, help="Oldest execution first.")
    _pagination(parser)


def _stop_args(parser: CommandParser) -> None:
    _execution_arn(parser)
    parser.add_argument("--error", help="ErrorMessage=…,ErrorType=…,ErrorData=…,StackTrace=[…] or JSON.")


def _client_token_and_reason(parser: CommandParser, verb: str) -> None:
    parser.add_argument("--client-token", help=f"Sent again within 15 minutes, the same {verb} succeeds once.")
    parser.add_argument("--reason", help="Why; recorded in the execution's history.")


def _pause_args(parser: CommandParser) -> None:
    _execution_arn(parser)
    _client_token_and_reason(parser, "pause")
    parser.add_argument(
        "--execution-timeout-paused",
        action=argparse.BooleanOptionalAction,
        help="Hold the execution timeout while paused (the default).",
    )


def _resume_args(parser: CommandParser) -> None:
    _execution_arn(parser)
    _client_token_and_reason(parser, "resume")


def _callback_id(parser: CommandParser) -> None:
    parser.add_argument("--callback-id", required=True, help="CallbackId from the CallbackStarted event.")


def _callback_success_args(parser: CommandParser) -> None:
    _callback_id(parser)
    parser.add_argument("--result", help="Result text handed to the waiting handler (or file://, fileb://).")
    _binary_format(parser)


def _callback_failure_args(parser: CommandParser) -> None:
    _callback_id(parser)
    parser.add_argument("--error", help="ErrorMessage=…,ErrorType=…,ErrorData=…,StackTrace=[…] or JSON.")


# --- running each subcommand --------------------------------------------------------------------


def _configuration_fields(args: argparse.Namespace) -> dict[str, Any]:
    durable_config = structure(args.durable_config, "--durable-config", "DurableConfig", DURABLE_CONFIG)
    if durable_config is not None:
        durable_config.pop("KMSKeyArn", None)  # payloads are not encrypted locally
    return given(
        Runtime=args.runtime,
        Timeout=args.timeout,
        Description=args.description,
        DurableConfig=durable_config,
        Environment=structure(args.environment, "--environment", "Environment", ENVIRONMENT),
    )


def _create_function(lam: LambdaClient, args: argparse.Namespace) -> dict[str, Any]:
    fields = _configuration_fields(args)
    code = _code(args)
    if code is not None:
        fields["Code"] = {"ZipFile": code}
    return lam.create_function(FunctionName=args.function_name, Handler=args.handler, **fields)


def _code(args: argparse.Namespace) -> bytes | None:
    """``--zip-file``'s bytes, or ``--code-dir``'s folder zipped here (Durable Lab's own option)."""
    if args.code_dir is None:
        return blob(args.zip_file, "--zip-file", None)
    try:
        return zip_directory(Path(args.code_dir).expanduser())
    except OSError as exc:
        raise UsageError(f"Error parsing parameter '--code-dir': {exc}") from exc
    except InvalidCode as exc:
        raise UsageError(f"Error parsing parameter '--code-dir': {exc.message}") from exc


def _update_function_code(lam: LambdaClient, args: argparse.Namespace) -> dict[str, Any]:
    code = _code(args)
    return lam.update_function_code(**given(FunctionName=args.function_name, ZipFile=code, RevisionId=args.revision_id))


def _update_function(lam: LambdaClient, args: argparse.Namespace) -> dict[str, Any]:
    fields = given(Handler=args.handler, RevisionId=args.revision_id, **_configuration_fields(args))
    return lam.update_function_configuration(FunctionName=args.function_name, **fields)


def _get_function(lam: LambdaClient, args: argparse.Namespace) -> dict[str, Any]:
    return lam.get_function(**given(FunctionName=args.function_name, Qualifier=args.qualifier))


def _list_functions(lam: LambdaClient, args: argparse.Namespace) -> dict[str, Any]:
    return paginate(lam.list_functions, "Functions", args)


def _check_outfile(outfile: str | None) -> None:
    """Refuse an outfile that cannot be written before the execution starts, not after it ran."""
    if outfile is None:
        return
    try:
        problem = _outfile_problem(Path(outfile))
    except OSError as exc:
        problem = str(exc)
    if problem:
        raise UsageError(f"Error parsing parameter 'outfile': cannot write {outfile!r}: {problem}.")


def _outfile_problem(target: Path) -> str | None:
    if "\x00" in str(target):
        return "the path contains a NUL byte"
    if target.is_dir():
        return "it is a directory"
    if not target.parent.is_dir():
        return f"the directory {str(target.parent)!r} does not exist"
    if not os.access(target if target.exists() else target.parent, os.W_OK):
        return "permission denied"
    return None


def _invoke(lam: LambdaClient, args: argparse.Namespace) -> dict[str, Any]:
    _check_outfile(args.outfile)
    response = lam.invoke(
        **given(
            FunctionName=args.function_name,
            InvocationType=args.invocation_type,
            Payload=json_payload(args.payload, args.cli_binary_format),
            DurableExecutionName=args.durable_execution_name,
            Qualifier=args.qualifier,
            LogType=args.log_type,
            ClientContext=args.client_context,
        )
    )
    body = response["Payload"].read() if "Payload" in response else b""
    output = {key: response[key] for key in INVOKE_OUTPUT_KEYS if key in response}
    if args.outfile is None:
        # Not the AWS CLI (its outfile is required): scripts get metadata and payload in one JSON.
        output["Payload"] = body.decode(errors="replace")
        return output
    try:
        Path(args.outfile).write_bytes(body)
    except (OSError, ValueError) as exc:
        raise CliError(f"Could not write the payload to {args.outfile}: {exc}") from exc
    return output


def _get_execution(lam: LambdaClient, args: argparse.Namespace) -> dict[str, Any]:
    return lam.get_durable_execution(DurableExecutionArn=args.durable_execution_arn)


def _history(lam: LambdaClient, args: argparse.Namespace) -> dict[str, Any]:
    return paginate(
        lam.get_durable_execution_history,
        "Events",
        args,
        **given(
            DurableExecutionArn=args.durable_execution_arn,
            IncludeExecutionData=args.include_execution_data,
            ReverseOrder=args.reverse_order,
        ),
    )


def _state(lam: LambdaClient, args: argparse.Namespace) -> dict[str, Any]:
    return paginate(
        lam.get_durable_execution_state,
        "Operations",
        args,
        DurableExecutionArn=args.durable_execution_arn,
        CheckpointToken=args.checkpoint_token,
    )


def _list_executions(lam: LambdaClient, args: argparse.Namespace) -> dict[str, Any]:
    return paginate(
        lam.list_durable_executions_by_function,
        "DurableExecutions",
        args,
        **given(
            FunctionName=args.function_name,
            Qualifier=args.qualifier,
            DurableExecutionName=args.durable_execution_name,
            Statuses=string_list(args.statuses),
            StartedAfter=args.started_after,
            StartedBefore=args.started_before,
            ReverseOrder=args.reverse_order,
        ),
    )


def _stop(lam: LambdaClient, args: argparse.Namespace) -> dict[str, Any]:
    error = structure(args.error, "--error", "Error", ERROR_OBJECT)
    return lam.stop_durable_execution(**given(DurableExecutionArn=args.durable_execution_arn, Error=error))


def _pause(lam: LambdaClient, args: argparse.Namespace) -> dict[str, Any]:
    return lam.pause_durable_execution(
        **given(
            DurableExecutionArn=args.durable_execution_arn,
            ClientToken=args.client_token,
            Reason=args.reason,
            ExecutionTimeoutPaused=args.execution_timeout_paused,
        )
    )


def _resume(lam: LambdaClient, args: argparse.Namespace) -> dict[str, Any]:
    return lam.resume_durable_execution(
        **given(DurableExecutionArn=args.durable_execution_arn, ClientToken=args.client_token, Reason=args.reason)
    )


def _delete(lam: LambdaClient, args: argparse.Namespace) -> dict[str, Any]:
    return lam.delete_durable_execution(DurableExecutionArn=args.durable_execution_arn)


def _callback_success(lam: LambdaClient, args: argparse.Namespace) -> dict[str, Any]:
    result = blob(args.result, "--result", args.cli_binary_format)
    return lam.send_durable_execution_callback_success(**given(CallbackId=args.callback_id, Result=result))


def _callback_failure(lam: LambdaClient, args: argparse.Namespace) -> dict[str, Any]:
    error = structure(args.error, "--error", "Error", ERROR_OBJECT)
    return lam.send_durable_execution_callback_failure(**given(CallbackId=args.callback_id, Error=error))


def _callback_heartbeat(lam: LambdaClient, args: argparse.Namespace) -> dict[str, Any]:
    return lam.send_durable_execution_callback_heartbeat(CallbackId=args.callback_id)


@dataclass(frozen=True)
class Operation:
    """One subcommand: its AWS operation name (used in error messages), help, options and runner."""

    api_name: str
    help: str
    add_arguments: Callable[[CommandParser], None]
    run: Callable[[LambdaClient, argparse.Namespace], dict[str, Any]]


OPERATIONS: dict[str, Operation] = {
    "create-function": Operation(
        "CreateFunction",
        "Register a function (durable with --durable-config).",
        _create_function_args,
        _create_function,
    ),
    "update-function-configuration": Operation(
        "UpdateFunctionConfiguration", "Change a function's configuration.", _update_function_args, _update_function
    ),
    "update-function-code": Operation(
        "UpdateFunctionCode", "Replace a function's code (a zip).", _update_function_code_args, _update_function_code
    ),
    "get-function": Operation("GetFunction", "Show one function.", _get_function_args, _get_function),
    "list-functions": Operation("ListFunctions", "List registered functions.", _list_functions_args, _list_functions),
    "invoke": Operation("Invoke", "Start a durable execution (or call a plain function).", _invoke_args, _invoke),
    "get-durable-execution": Operation(
        "GetDurableExecution", "Show one execution's status, input and result.", _get_execution_args, _get_execution
    ),
    "get-durable-execution-history": Operation(
        "GetDurableExecutionHistory", "List an execution's history events.", _history_args, _history
    ),
    "get-durable-execution-state": Operation(
        "GetDurableExecutionState", "List an execution's operations (needs its token).", _state_args, _state
    ),
    "list-durable-executions-by-function": Operation(
        "ListDurableExecutionsByFunction",
        "List a function's executions, newest first.",
        _list_executions_args,
        _list_executions,
    ),
    "stop-durable-execution": Operation(
        "StopDurableExecution", "Stop a running or paused execution.", _stop_args, _stop
    ),
    "pause-durable-execution": Operation(
        "PauseDurableExecution", "Pause a running execution: no invocation until resumed.", _pause_args, _pause
    ),
    "resume-durable-execution": Operation(
        "ResumeDurableExecution", "Resume a paused execution.", _resume_args, _resume
    ),
    "delete-durable-execution": Operation(
        "DeleteDurableExecution", "Delete a finished execution and all its data.", _execution_arn, _delete
    ),
    "send-durable-execution-callback-success": Operation(
        "SendDurableExecutionCallbackSuccess",
        "Complete a pending callback with a result.",
        _callback_success_args,
        _callback_success,
    ),
    "send-durable-execution-callback-failure": Operation(
        "SendDurableExecutionCallbackFailure",
        "Fail a pending callback with an error.",
        _callback_failure_args,
        _callback_failure,
    ),
    "send-durable-execution-callback-heartbeat": Operation(
        "SendDurableExecutionCallbackHeartbeat",
        "Keep a pending callback's heartbeat alive.",
        _callback_id,
        _callback_heartbeat,
    ),
}


# --- Durable Lab's own operator commands (no AWS CLI counterpart) ------------------------------


def _release_quarantine(lam: LambdaClient, args: argparse.Namespace) -> dict[str, Any]:
    return lam.release_durable_execution_quarantine(DurableExecutionArn=args.durable_execution_arn)


OPERATIONS["release-quarantine"] = Operation(
    "ReleaseQuarantine",
    "Release a quarantined execution: the scheduler's loops take it again (Durable Lab only).",
    _execution_arn,
    _release_quarantine,
)


class Command(BaseCommand):
    help = (
        "The aws lambda CLI's durable-function commands, run against Durable Lab. "
        "Same subcommands, options, JSON output and exit statuses (252 bad arguments, 254 service error)."
    )
    requires_system_checks: list[str] = []  # a CLI call should start fast; `manage.py check` covers this

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        # -v means "show the detail", as for `make run`; Django's level stays as --verbosity.
        return super().create_parser(prog_name, subcommand, conflict_handler="resolve", **kwargs)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.epilog = "Run 'manage.py durable <subcommand> --help' for a subcommand's options."
        # Read by manage.py before the settings configure logging (durable_site.terminal).
        parser.add_argument(
            "-v", "--verbose", action="store_true", help="show the log lines and tracebacks (DURABLE_VERBOSE=1)"
        )
        subparsers = parser.add_subparsers(dest="operation", metavar="<subcommand>", title="subcommands", required=True)
        for name, operation in OPERATIONS.items():
            subparser = subparsers.add_parser(name, help=operation.help, description=operation.help)
            operation.add_arguments(subparser)

    def run_from_argv(self, argv: list[str]) -> None:
        try:
            super().run_from_argv(argv)
        except SystemExit as exc:
            # argparse exits 2 on a bad command line; the AWS CLI uses 252 for that.
            if exc.code == ARGPARSE_ERROR:
                raise SystemExit(EXIT_BAD_ARGUMENTS) from None
            raise

    def handle(self, *args: Any, **options: Any) -> None:
        operation = OPERATIONS[options["operation"]]
        try:
            response = operation.run(engine.client(), argparse.Namespace(**options))
        except ServiceError as exc:
            self._fail(
                f"An error occurred ({exc.code}) when calling the {operation.api_name} operation: {exc.message}",
                EXIT_SERVICE_ERROR,
            )
        except CliError as exc:
            self._fail(str(exc), exc.status)
        except (EngineError, psycopg.Error, PoolTimeout) as exc:
            self._show_traceback(options)
            self._fail(f"Durable Lab could not complete {operation.api_name}: {exc}", EXIT_GENERAL)
        except Exception as exc:  # a bug must still end as one line and exit 255, never a traceback
            self._show_traceback(options)
            self._fail(
                f"Durable Lab could not complete {operation.api_name}: {type(exc).__name__}: {exc}", EXIT_GENERAL
            )
        finally:
            db.close()
        if response:  # the AWS CLI prints nothing for an empty response
            self.stdout.write(to_json(response))

    def _show_traceback(self, options: dict[str, Any]) -> None:
        """With -v, the traceback behind an exit 255 (otherwise one line)."""
        if options.get("verbose"):
            traceback.print_exc()

    def _fail(self, message: str, status: int) -> NoReturn:
        if self._called_from_command_line:
            # The AWS CLI separates its error from the command line with a blank line.
            self.stderr.write(f"\n{message}")
            sys.exit(status)
        raise CommandError(message, returncode=status)
