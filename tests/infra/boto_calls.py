"""Find the AWS API calls a component's Python code makes, by reading its source with `ast`.

What counts as a call:
- a method called on a boto3 client: the client is created with `<anything>.client("svc", ...)` (boto3,
  a session, or a project helper such as `clients.client("s3", settings)`, first argument a string
  literal or a module constant naming a botocore service) or returned by a function that does so, and
  the method is called on that expression directly, or on a name / `self.<attr>` it was assigned to
  (also `x = client or boto3.client(...)`);
- `get_paginator("op")`, `get_waiter("name")` and `generate_presigned_url("op")`: the operation they name;
- boto3's managed transfers (`upload_file`, `download_file`, ...): the S3 actions they need;
- third-party code that calls AWS with our credentials (powertools idempotency): its documented actions.

A method whose receiver cannot be typed this way but whose name says it is a client (`s3`, `kvs`,
`*_client`, ...) and which is an operation of a service the component creates clients for is counted
too, marked as inferred. Anything the scanner cannot interpret (`boto3.resource`, a client of a service
named by a variable it cannot resolve, an unknown method on a typed client) is reported as a problem,
so that a call is never silently missed.
"""

from __future__ import annotations

import ast
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

import botocore.session
from botocore import xform_name

logger = logging.getLogger(__name__)

# IAM action prefix where it differs from the service's signing name.
IAM_PREFIX_OVERRIDES = {"cloudwatch": "cloudwatch"}  # signs as "monitoring", IAM says "cloudwatch"

# API operations whose IAM action has another name (S3 authorises several operations by one action).
ACTION_OVERRIDES: dict[str, tuple[str, ...]] = {
    "s3:ListObjectsV2": ("s3:ListBucket",),
    "s3:ListObjects": ("s3:ListBucket",),
    "s3:HeadObject": ("s3:GetObject",),
    "s3:HeadBucket": ("s3:ListBucket",),
    "s3:CopyObject": ("s3:GetObject", "s3:PutObject"),  # read the source, write the target
    "s3:CreateMultipartUpload": ("s3:PutObject",),
    "s3:UploadPart": ("s3:PutObject",),
    "s3:CompleteMultipartUpload": ("s3:PutObject",),
}

# boto3's managed transfers (s3transfer): the operations they make.
S3_TRANSFERS = {
    "upload_file": ("s3:PutObject",),
    "upload_fileobj": ("s3:PutObject",),
    "download_file": ("s3:GetObject",),
    "download_fileobj": ("s3:GetObject",),
    "copy": ("s3:GetObject", "s3:PutObject"),
}

# Transactions are authorised item by item: each entry of TransactItems needs its item action
# (developerguide/transaction-apis-iam.html); there is no IAM action named after the transaction.
TRANSACT_ITEM_ACTIONS = {
    "transact_write_items": {
        "Put": "dynamodb:PutItem",
        "Update": "dynamodb:UpdateItem",
        "Delete": "dynamodb:DeleteItem",
        "ConditionCheck": "dynamodb:ConditionCheckItem",
    },
    "transact_get_items": {"Get": "dynamodb:GetItem"},
}

# Client methods that make no request.
LOCAL_METHODS = {"close", "can_paginate"}

# Third-party classes that call AWS with the client (or default credentials) they are given.
SDK_CONSUMERS = {
    # powertools idempotency: get_item (read a record), put_item (conditional, save in progress),
    # update_item (save success), delete_item (the function raised: let the retry run).
    "DynamoDBPersistenceLayer": (
        "dynamodb",
        ("dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"),
    ),
}

# A receiver name that says "this is a client" (for calls on clients the scanner could not type).
CLIENT_RECEIVER = re.compile(
    r"(^|_)(client|s3|kinesis|kvs|media|archived|ddb|dynamodb|table|sns|sqs|sagemaker|runtime|ecr|ecs|"
    r"lambda_?|logs|cloudwatch|sts)s?$"
)


@dataclass(frozen=True)
class ApiCall:
    """One place in the code that makes AWS API requests."""

    path: str  # relative to the repository root
    line: int
    service: str  # botocore service name, e.g. "sagemaker-runtime"
    method: str  # as written, e.g. "invoke_endpoint", "upload_file", "DynamoDBPersistenceLayer"
    actions: tuple[str, ...]  # IAM actions, e.g. ("sagemaker:InvokeEndpoint",)
    inferred: bool = False  # typed from the receiver's name, not from where the client was made

    def where(self) -> str:
        how = " (receiver typed by its name)" if self.inferred else ""
        return f"{self.path}:{self.line} {self.service}.{self.method}{how}"


@dataclass
class ScanResult:
    calls: list[ApiCall] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    s3_key_prefixes: dict[str, list[str]] = field(default_factory=dict)  # "tmp/" -> ["path:line", ...]

    def actions(self) -> dict[str, list[ApiCall]]:
        by_action: dict[str, list[ApiCall]] = {}
        for call in self.calls:
            for action in call.actions:
                by_action.setdefault(action, []).append(call)
        return by_action


@cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@cache
def available_services() -> frozenset[str]:
    return frozenset(_session().get_available_services())


@cache
def _operations(service: str) -> dict[str, str]:
    """snake_case method name -> API operation name, e.g. put_records -> PutRecords."""
    model = _session().get_service_model(service)
    return {xform_name(name): name for name in model.operation_names}


@cache
def iam_prefix(service: str) -> str:
    return IAM_PREFIX_OVERRIDES.get(service) or _session().get_service_model(service).signing_name


def operation_actions(service: str, operation: str) -> tuple[str, ...]:
    action = f"{iam_prefix(service)}:{operation}"
    return ACTION_OVERRIDES.get(action, (action,))


def method_actions(service: str, method: str) -> tuple[str, ...] | None:
    """IAM actions of calling `method` on a `service` client; None when it is not one of its methods."""
    operation = _operations(service).get(method)
    if operation is not None:
        return operation_actions(service, operation)
    if service == "s3" and method in S3_TRANSFERS:
        return S3_TRANSFERS[method]
    return None


def _waiter_operation(service: str, waiter: str) -> str | None:
    try:
        model = _session().get_waiter_model(service)
    except Exception:  # noqa: BLE001 - botocore raises a plain UnknownServiceError or DataNotFoundError
        return None
    for name in model.waiter_names:
        if xform_name(name) == waiter:
            return model.get_waiter(name).operation
    return None


def _dotted(node: ast.AST) -> str | None:
    """`a.b.c` for a Name/Attribute chain, else None."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return None if inner is None else f"{inner}.{node.attr}"
    return None


def _callee_name(call: ast.Call) -> str | None:
    func = call.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _first_argument(call: ast.Call, keyword: str) -> ast.AST | None:
    if call.args:
        return call.args[0]
    for kw in call.keywords:
        if kw.arg == keyword:
            return kw.value
    return None


class _FileScanner:
    """Scans one module. Flow-insensitive: a name bound to a client anywhere in a function is that client
    everywhere in the function; `self.<attr>` bound in any method is that client in the whole class."""

    def __init__(
        self, path: Path, rel: str, result: ScanResult, component_services: set[str], classes: set[str]
    ) -> None:
        self.rel = rel
        self.classes = classes  # classes defined by the component: their methods are not API calls
        self.result = result
        self.component_services = component_services
        self.tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        self.parents: dict[ast.AST, ast.AST] = {}
        for parent in ast.walk(self.tree):
            for child in ast.iter_child_nodes(parent):
                self.parents[child] = parent
        self.constants = {
            target.id: node.value.value
            for node in self.tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, str)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        self.factories: dict[str, str] = {}  # function name -> service of the client it returns
        self.scope_bindings: dict[ast.AST, dict[str, str]] = {}  # function/class/module -> name -> service

    # --- where a node lives -------------------------------------------------------------------------

    def _enclosing(self, node: ast.AST, kinds: tuple[type, ...]) -> ast.AST | None:
        current = self.parents.get(node)
        while current is not None and not isinstance(current, kinds):
            current = self.parents.get(current)
        return current

    def _function_of(self, node: ast.AST) -> ast.AST:
        return self._enclosing(node, (ast.FunctionDef, ast.AsyncFunctionDef)) or self.tree

    def _class_of(self, node: ast.AST) -> ast.AST | None:
        return self._enclosing(node, (ast.ClassDef,))

    # --- what a node is -----------------------------------------------------------------------------

    def client_service(self, node: ast.AST | None) -> str | None:
        """The service of the client `node` evaluates to, or None when it is not a client."""
        if node is None:
            return None
        if isinstance(node, ast.BoolOp):
            services = {self.client_service(value) for value in node.values} - {None}
            return services.pop() if len(services) == 1 else None
        if isinstance(node, ast.IfExp):
            return self.client_service(node.body) or self.client_service(node.orelse)
        if isinstance(node, ast.Call):
            name = _callee_name(node)
            if name == "client":
                return self._service_argument(node)
            if name in self.factories and isinstance(node.func, ast.Name | ast.Attribute):
                return self.factories[name]
            bound = self._bound(node.func)
            if bound and bound.startswith("factory:"):
                return bound.removeprefix("factory:")
            return None
        bound = self._bound(node)
        if bound and not bound.startswith(("factory:", "class:")):
            return bound
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            return self.factories.get(node.attr)  # a property that returns a client
        return None

    def _bound(self, node: ast.AST) -> str | None:
        """What a name or `self.<attr>` is bound to: a service, or "factory:<service>"."""
        if isinstance(node, ast.Name):
            for scope in (self._function_of(node), self.tree):
                bound = self.scope_bindings.get(scope, {}).get(node.id)
                if bound:
                    return bound
            return None
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "self":
            owner = self._class_of(node)
            return self.scope_bindings.get(owner, {}).get(f"self.{node.attr}") if owner else None
        return None

    def _service_argument(self, call: ast.Call) -> str | None:
        argument = _first_argument(call, "service_name")
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            service = argument.value
        elif isinstance(argument, ast.Name) and argument.id in self.constants:
            service = self.constants[argument.id]
        else:
            return None  # a client factory's own body: client(service, ...) with a parameter
        if service not in available_services():
            return None  # some other .client("x") API
        return service

    # --- passes -------------------------------------------------------------------------------------

    def scan(self) -> None:
        # Factories (functions and properties that return a client) and bindings (names and self.<attr>
        # assigned a client, or a factory) feed each other: iterate until nothing new is learnt.
        for _ in range(4):
            known = (dict(self.factories), {k: dict(v) for k, v in self.scope_bindings.items()})
            for node in ast.walk(self.tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    for inner in ast.walk(node):
                        if isinstance(inner, ast.Return) and self._function_of(inner) is node:
                            service = self.client_service(inner.value)
                            if service:
                                self.factories[node.name] = service
                elif isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
                    service = self.client_service(node.value)
                    factory = self._factory_reference(node.value)
                    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                    instance = self._instance_class(node.value)
                    for target in targets:
                        if service:
                            self._bind(target, service)
                        elif factory:
                            self._bind(target, f"factory:{factory}")
                        elif instance:
                            self._bind(target, f"class:{instance}")
            if known == (self.factories, self.scope_bindings):
                break
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call):
                self._visit_call(node)
            elif isinstance(node, ast.Constant | ast.JoinedStr):
                self._note_s3_key(node)

    def _instance_class(self, node: ast.AST) -> str | None:
        """The component's own class `node` is an instance of (`self.media = media or KvsArchivedMedia()`)."""
        if isinstance(node, ast.BoolOp):
            found = {self._instance_class(value) for value in node.values} - {None}
            return found.pop() if len(found) == 1 else None
        if isinstance(node, ast.Call) and _callee_name(node) in self.classes:
            return _callee_name(node)
        bound = self._bound(node)
        return bound.removeprefix("class:") if bound and bound.startswith("class:") else None

    def _factory_reference(self, node: ast.AST) -> str | None:
        """The service of a client factory function `node` refers to (`x = factory or _make_client`)."""
        if isinstance(node, ast.BoolOp):
            found = {self._factory_reference(value) for value in node.values} - {None}
            return found.pop() if len(found) == 1 else None
        if isinstance(node, ast.Name) and node.id in self.factories:
            return self.factories[node.id]
        return None

    def _bind(self, target: ast.AST, service: str) -> None:
        if isinstance(target, ast.Name):
            self.scope_bindings.setdefault(self._function_of(target), {})[target.id] = service
        elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self":
            owner = self._class_of(target)
            if owner is not None:
                self.scope_bindings.setdefault(owner, {})[f"self.{target.attr}"] = service

    def _visit_call(self, call: ast.Call) -> None:
        name = _callee_name(call)
        if name == "resource" and (_dotted(call.func) or "").endswith(("boto3.resource", "session.resource")):
            self.problem(call, "boto3.resource(...) is not understood by the scanner: use a client")
            return
        if name in SDK_CONSUMERS:
            service, actions = SDK_CONSUMERS[name]
            self.record(call, service, name, actions)
            return
        if not isinstance(call.func, ast.Attribute):
            return
        method = call.func.attr
        receiver = call.func.value
        service = self.client_service(receiver)
        inferred = False
        if service is None and self._instance_class(receiver) is None:
            service = self._service_by_receiver_name(receiver, method)
            inferred = service is not None
        if service is None:
            return
        if method in LOCAL_METHODS or method == "client":
            return
        if method in {"get_paginator", "generate_presigned_url", "get_waiter"}:
            self._visit_named_operation(call, service, method, inferred)
            return
        if service == "dynamodb" and method in TRANSACT_ITEM_ACTIONS:
            self._visit_transaction(call, method, inferred)
            return
        actions = method_actions(service, method)
        if actions is None:
            self.problem(call, f"{service} client has no method {method!r} the scanner knows")
            return
        self.record(call, service, method, actions, inferred)

    def _visit_named_operation(self, call: ast.Call, service: str, method: str, inferred: bool) -> None:
        keyword = {"get_paginator": "operation_name", "generate_presigned_url": "ClientMethod"}.get(method, "")
        argument = _first_argument(call, keyword or "waiter_name")
        if not (isinstance(argument, ast.Constant) and isinstance(argument.value, str)):
            self.problem(call, f"{service}.{method} with an operation the scanner cannot read")
            return
        if method == "get_waiter":
            operation = _waiter_operation(service, argument.value)
        else:
            operation = _operations(service).get(argument.value)
        if operation is None:
            self.problem(call, f"{service}.{method}({argument.value!r}) names no operation of {service}")
            return
        self.record(call, service, f"{method}({argument.value!r})", operation_actions(service, operation), inferred)

    def _visit_transaction(self, call: ast.Call, method: str, inferred: bool) -> None:
        """`TransactItems=[{"Update": ...}, {"Put": ...}]`: the item actions its literal entries name."""
        items = next((kw.value for kw in call.keywords if kw.arg == "TransactItems"), None)
        known = TRANSACT_ITEM_ACTIONS[method]
        kinds = [
            key.value if isinstance(key, ast.Constant) else None
            for entry in (items.elts if isinstance(items, ast.List | ast.Tuple) else [None])
            for key in (entry.keys if isinstance(entry, ast.Dict) else [None])
        ]
        if not kinds or any(kind not in known for kind in kinds):
            self.problem(call, f"dynamodb.{method} whose TransactItems are not a literal list of "
                               f"{{{'|'.join(known)}: ...}} entries the scanner can read")
            return
        self.record(call, "dynamodb", method, {known[kind] for kind in kinds}, inferred)

    def _service_by_receiver_name(self, receiver: ast.AST, method: str) -> str | None:
        dotted = _dotted(receiver)
        if dotted is None:
            return None
        last = dotted.rsplit(".", 1)[-1].lower().lstrip("_")
        if not CLIENT_RECEIVER.search(last):
            return None
        operation = method
        if method in {"get_paginator", "generate_presigned_url"}:  # typed by the operation they name
            argument = self.parents.get(receiver)
            call = self.parents.get(argument) if argument is not None else None
            keyword = "operation_name" if method == "get_paginator" else "ClientMethod"
            named = _first_argument(call, keyword) if isinstance(call, ast.Call) else None
            if not (isinstance(named, ast.Constant) and isinstance(named.value, str)):
                return None
            operation = named.value
        services = sorted(s for s in self.component_services if method_actions(s, operation) is not None)
        if len(services) > 1:
            self.problem(receiver, f"{dotted}.{method}: an operation of several services {services}")
            return None
        return services[0] if services else None

    def _note_s3_key(self, node: ast.Constant | ast.JoinedStr) -> None:
        """Object key prefixes the code builds: `Key=`/`Prefix=` arguments, names ending in key/prefix,
        the return values of functions named *key*/*prefix*."""
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, str):
                return
            head = node.value
        else:
            first = node.values[0] if node.values else None
            if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
                return
            head = first.value
        match = re.match(r"^([a-z0-9_-]+/)", head)
        if not match or not self._used_as_s3_key(node):
            return
        self.result.s3_key_prefixes.setdefault(match.group(1), []).append(f"{self.rel}:{node.lineno}")

    def _used_as_s3_key(self, node: ast.AST) -> bool:
        parent = self.parents.get(node)
        if isinstance(parent, ast.JoinedStr):
            return False  # the f-string itself is examined
        keyish = re.compile(r"(^|_)(key|prefix)$", re.IGNORECASE)
        if isinstance(parent, ast.keyword):
            return parent.arg in {"Key", "Prefix"}
        if isinstance(parent, ast.Assign):
            return any(keyish.search((_dotted(t) or "").rsplit(".", 1)[-1]) for t in parent.targets)
        if isinstance(parent, ast.Return):
            function = self._enclosing(parent, (ast.FunctionDef, ast.AsyncFunctionDef))
            return function is not None and bool(re.search(r"key|prefix", function.name))
        return False

    # --- output -------------------------------------------------------------------------------------

    def record(
        self, node: ast.AST, service: str, method: str, actions: Iterable[str], inferred: bool = False
    ) -> None:
        self.result.calls.append(
            ApiCall(self.rel, node.lineno, service, method, tuple(sorted(set(actions))), inferred)
        )

    def problem(self, node: ast.AST, message: str) -> None:
        self.result.problems.append(f"{self.rel}:{getattr(node, 'lineno', '?')}: {message}")


def created_services(paths: Iterable[Path]) -> set[str]:
    """Every service a client is created for in `paths` (for typing receivers by name)."""
    services: set[str] = set()
    for path in paths:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        constants = {
            target.id: node.value.value
            for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
            for target in node.targets
            if isinstance(target, ast.Name)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _callee_name(node) == "client":
                argument = _first_argument(node, "service_name")
                if isinstance(argument, ast.Name):
                    name = constants.get(argument.id)
                else:
                    name = argument.value if isinstance(argument, ast.Constant) else None
                if isinstance(name, str) and name in available_services():
                    services.add(name)
            if isinstance(node, ast.Call) and _callee_name(node) in SDK_CONSUMERS:
                services.add(SDK_CONSUMERS[_callee_name(node)][0])
    return services


def scan(paths: Iterable[Path], repo_root: Path) -> ScanResult:
    """The AWS API calls made by the Python files `paths`."""
    paths = sorted(paths)
    result = ScanResult()
    services = created_services(paths)
    classes = {
        node.name
        for path in paths
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ClassDef)
    }
    for path in paths:
        _FileScanner(path, path.relative_to(repo_root).as_posix(), result, services, classes).scan()
    return result


# --- code of other packages that a component runs -----------------------------------------------------


def _module_files(module: str, repo_root: Path) -> list[Path]:
    """The repository files `import module` executes: the module and its packages' __init__.py."""
    parts = module.split(".")
    found = [repo_root.joinpath(*parts[:n], "__init__.py") for n in range(1, len(parts) + 1)]
    found.append(repo_root.joinpath(*parts).with_suffix(".py"))
    return [path for path in found if path.is_file()]


def _imported_modules(path: Path, repo_root: Path) -> set[str]:
    package = ".".join(path.relative_to(repo_root).with_suffix("").parts[:-1])
    modules: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            modules.add(base)
            modules.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import module`
    return {module for module in modules if module}


def imported_files(paths: Iterable[Path], repo_root: Path, excluded: set[Path]) -> list[Path]:
    """Repository files outside `paths` that `paths` import, transitively (never `excluded` ones)."""
    own = set(paths)
    seen: set[Path] = set()
    todo = list(own)
    while todo:
        for module in _imported_modules(todo.pop(), repo_root):
            for found in _module_files(module, repo_root):
                if found not in own and found not in seen and found not in excluded:
                    seen.add(found)
                    todo.append(found)
    return sorted(seen)


def _names_used(node: ast.AST) -> set[str]:
    return {n.id if isinstance(n, ast.Name) else n.attr
            for n in ast.walk(node) if isinstance(n, ast.Name | ast.Attribute)}


@dataclass(frozen=True)
class _Unit:
    """A top-level function or a method (with the functions nested in it) of an imported file."""

    path: Path
    name: str
    owner: str | None  # the class of a method
    lines: range
    uses: frozenset[str]


def _units_and_import_time_names(path: Path) -> tuple[list[_Unit], set[str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    units: list[_Unit] = []
    at_import: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            units.append(_Unit(path, node.name, None, range(node.lineno, node.end_lineno + 1),
                               frozenset(_names_used(node))))
            at_import |= set().union(*(_names_used(d) for d in node.decorator_list))
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    units.append(_Unit(path, item.name, node.name, range(item.lineno, item.end_lineno + 1),
                                       frozenset(_names_used(item))))
                else:
                    at_import |= _names_used(item)
        else:
            at_import |= _names_used(node)
    return units, at_import


def scan_with_imports(paths: Iterable[Path], repo_root: Path, excluded: Iterable[Path] = ()) -> ScanResult:
    """The AWS API calls of `paths` and of the code they run in other packages of the repository.

    Imported files are scanned with the component, and their calls kept where they can run: at import
    time, or in a function or method reachable from the component by name (a name the component's code
    uses, or one used by a function already reached; a class's dunder methods when the class is named).
    By-name reachability over-approximates (two functions with one name both count), never misses."""
    paths = sorted(paths)
    library = imported_files(paths, repo_root, set(excluded))
    result = scan([*paths, *library], repo_root)
    units: list[_Unit] = []
    names: set[str] = set().union(*(_names_used(ast.parse(p.read_text(encoding="utf-8"))) for p in paths))
    for path in library:
        found, at_import = _units_and_import_time_names(path)
        units.extend(found)
        names |= at_import
    reached: set[_Unit] = set()
    while True:
        new = {
            unit for unit in units if unit not in reached and (
                unit.name in names or (unit.name.startswith("__") and unit.owner in names)
            )
        }
        if not new:
            break
        reached |= new
        names |= set().union(*(unit.uses for unit in new))
    library_rel = {path.relative_to(repo_root).as_posix(): path for path in library}

    def runs(call: ApiCall) -> bool:
        path = library_rel.get(call.path)
        if path is None:
            return True  # the component's own code
        enclosing = [unit for unit in units if unit.path == path and call.line in unit.lines]
        return not enclosing or any(unit in reached for unit in enclosing)

    result.calls = [call for call in result.calls if runs(call)]
    return result


def reads_environment(paths: Iterable[Path]) -> dict[str, list[str]]:
    """Environment variable names the code reads: `os.environ[...]`, `os.environ.get(...)`,
    `os.getenv(...)`, `env.get(...)` / `environ.get(...)`, with the name a literal or a module constant
    (also one imported from another module of the same files). Name -> ["path:line", ...]."""
    paths = sorted(paths)
    constants: dict[str, str] = {}
    trees = {path: ast.parse(path.read_text(encoding="utf-8")) for path in paths}
    for tree in trees.values():
        for node in tree.body:
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Constant)
                and isinstance(node.value.value, str)
                and re.fullmatch(r"[A-Z][A-Z0-9_]+", node.value.value)
            ):
                for target in node.targets:
                    if isinstance(target, ast.Name):
                        constants[target.id] = node.value.value
    found: dict[str, list[str]] = {}

    def name_of(argument: ast.AST | None) -> str | None:
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            return argument.value
        if isinstance(argument, ast.Name):
            return constants.get(argument.id)
        if isinstance(argument, ast.Attribute):
            return constants.get(argument.attr)
        return None

    for path, tree in trees.items():
        for node in ast.walk(tree):
            argument = None
            if isinstance(node, ast.Call):
                dotted = _dotted(node.func) or ""
                if dotted in {"os.getenv", "os.environ.get", "environ.get", "env.get"} or (
                    dotted.endswith((".get", "getenv")) and re.search(r"(^|\.)(env|environ|environment)\.get$", dotted)
                ):
                    argument = node.args[0] if node.args else None
            elif isinstance(node, ast.Subscript) and (_dotted(node.value) or "") in {"os.environ", "env", "environ"}:
                argument = node.slice
            name = name_of(argument)
            if name and re.fullmatch(r"[A-Z][A-Z0-9_]+", name):
                found.setdefault(name, []).append(f"{path.name}:{node.lineno}")
    return found
