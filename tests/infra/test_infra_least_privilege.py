"""Least privilege, proven: each role grants exactly the actions its code calls (read from the Python
sources with `ast`, see boto_calls.py), plus the actions AWS itself makes with the role, listed below
with the reason. A call the role lacks fails with the file and line; a grant no code needs fails too.
Also: every environment variable the worker and the Lambda read is set by Terraform.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

import boto_calls
import infra_hcl
import pytest

REPO = infra_hcl.REPO_ROOT

# --- the components: where their code is --------------------------------------------------------------


@dataclass(frozen=True)
class Component:
    name: str
    globs: tuple[str, ...]
    excluded: dict[str, str] = field(default_factory=dict)  # glob -> why it is not this component's code
    # Also scan the code of other packages it imports (functions it reaches, see boto_calls.scan_with_imports).
    follow_imports: bool = False

    def excluded_paths(self) -> set[Path]:
        return {path for pattern in self.excluded for path in REPO.glob(pattern)}

    def paths(self) -> list[Path]:
        return sorted({path for pattern in self.globs for path in REPO.glob(pattern)} - self.excluded_paths())

    def scan(self) -> boto_calls.ScanResult:
        if self.follow_imports:
            return boto_calls.scan_with_imports(self.paths(), REPO, self.excluded_paths())
        return boto_calls.scan(self.paths(), REPO)


def _imports_sagemaker_sdk(path: Path) -> bool:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "sagemaker" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "sagemaker":
            return True
    return "client(\"sagemaker\"" in path.read_text(encoding="utf-8")


def training_launcher_files() -> list[str]:
    """Files of training/ that launch jobs (the sagemaker SDK or a `sagemaker` client): they run on an
    operator's machine or in CI, not inside the training job."""
    return sorted(
        path.relative_to(REPO).as_posix() for path in REPO.glob("training/**/*.py") if _imports_sagemaker_sdk(path)
    )


# Where `make deploy`'s code may live (issue 5); the first that exists is the deploy component.
DEPLOY_GLOBS = ("inference/deploy.py", "inference/deploy/**/*.py", "deploy/**/*.py", "tools/deploy*.py")

COMPONENTS = {
    "worker": Component(
        "worker",
        # the worker image holds worker/, kvs/ (GetMedia) and archive/ (clips, GetClip): all of them run as its role
        ("worker/**/*.py", "kvs/**/*.py", "archive/**/*.py"),
        {"local/**/*.py": "the local deployment (moto stack, demo): never runs on AWS"},
    ),
    "alert_lambda": Component(
        "alert_lambda",
        ("alert_lambda/**/*.py",),
        {
            "alert_lambda/local_esm/**/*.py": "the local twin of the event source mapping: the Lambda service does this",
            "alert_lambda/package*.py": "the zip packager: runs at build time",
            "alert_lambda/redrive.py": "the redrive: an operator's tool, its own component",
        },
    ),
    # Issue 15: delivers the ranges the mapping discarded; runs the handler in-process (follow imports).
    "alert redrive": Component("alert redrive", ("alert_lambda/redrive.py",), follow_imports=True),
    "inference": Component(
        "inference", ("inference/**/*.py",), {"inference/serve.py": "the local server", **dict.fromkeys(DEPLOY_GLOBS, "deploy")}
    ),
    "training job": Component(
        "training job",
        ("training/**/*.py",),
        dict.fromkeys(training_launcher_files(), "the training launcher (its own component)"),
    ),
    "training launcher": Component("training launcher", tuple(training_launcher_files())),
    "deploy": Component("deploy", DEPLOY_GLOBS),
    # A review runs archive.feedback.give_feedback (archive/store.py's S3 calls): follow imports.
    "console": Component(
        "console",
        ("console/**/*.py",),
        {"local/**/*.py": "the local deployment (moto server, seeded alerts): never imported by console/"},
        follow_imports=True,
    ),
}

# --- the roles: whose code runs as each, and what AWS does with it --------------------------------------

ECR_PULL = {"ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
            "ecr:GetAuthorizationToken"}


@dataclass(frozen=True)
class Role:
    where: str  # the Terraform that defines it, for messages
    component: str | None  # whose code runs as this role (None: only AWS uses it)
    aws_itself: dict[str, str]  # action -> who makes that call with this role, and why


ROLES: dict[tuple[str, str], Role] = {
    ("worker", "task"): Role("infra/modules/worker/iam.tf data.aws_iam_policy_document.task", "worker", {}),
    ("worker", "task_exec"): Role(
        "infra/modules/worker/iam.tf data.aws_iam_policy_document.task_exec",
        None,
        {
            # The ECS agent pulls the worker image and ships the container's stdout to CloudWatch Logs.
            **dict.fromkeys(ECR_PULL, "ECS agent: pull the worker image"),
            "logs:CreateLogStream": "ECS awslogs driver",
            "logs:PutLogEvents": "ECS awslogs driver",
        },
    ),
    ("alerts", "this"): Role(
        "infra/modules/alerts/iam.tf data.aws_iam_policy_document.this",
        "alert_lambda",
        {
            # The event source mapping reads the stream with the function's role ...
            "kinesis:DescribeStream": "event source mapping",
            "kinesis:DescribeStreamSummary": "event source mapping",
            "kinesis:GetRecords": "event source mapping",
            "kinesis:GetShardIterator": "event source mapping",
            "kinesis:ListShards": "event source mapping",
            # ... and sends a failed batch's description to its on-failure destination.
            "sqs:SendMessage": "event source mapping: on-failure destination (the DLQ)",
            "logs:CreateLogStream": "Lambda runtime: function logs",
            "logs:PutLogEvents": "Lambda runtime: function logs",
        },
    ),
    ("alerts", "redrive"): Role(
        "infra/modules/alerts/iam.tf data.aws_iam_policy_document.redrive (managed policy aws_iam_policy.this)",
        "alert redrive",
        {},
    ),
    ("model", "endpoint"): Role(
        "infra/modules/model/iam.tf data.aws_iam_policy_document.endpoint",
        "inference",
        {
            "s3:GetObject": "SageMaker hosting: download model.tar.gz",
            "s3:PutObject": "SageMaker hosting: data capture (a dynamic statement, only when enabled)",
            **dict.fromkeys(ECR_PULL, "SageMaker hosting: pull the inference image"),
            "logs:CreateLogGroup": "SageMaker hosting: container logs",
            "logs:CreateLogStream": "SageMaker hosting: container logs",
            "logs:DescribeLogStreams": "SageMaker hosting: container logs",
            "logs:PutLogEvents": "SageMaker hosting: container logs",
            "cloudwatch:PutMetricData": "SageMaker hosting: instance metrics (/aws/sagemaker/Endpoints)",
        },
    ),
    ("model", "training"): Role(
        "infra/modules/model/iam.tf data.aws_iam_policy_document.training",
        "training job",
        {
            "s3:ListBucket": "SageMaker training: list the input channels' prefixes",
            "s3:GetObject": "SageMaker training: download channels and checkpoints",
            "s3:PutObject": "SageMaker training: upload model.tar.gz and checkpoints",
            **dict.fromkeys(ECR_PULL, "SageMaker training: pull the training image"),
            "logs:CreateLogStream": "SageMaker training: job logs",
            "logs:DescribeLogStreams": "SageMaker training: job logs",
            "logs:PutLogEvents": "SageMaker training: job logs",
            "cloudwatch:PutMetricData": "SageMaker training: instance and algorithm metrics (/aws/sagemaker/TrainingJobs)",
        },
    ),
    ("console", "task"): Role("infra/modules/console/iam.tf data.aws_iam_policy_document.task", "console", {}),
    ("console", "task_exec"): Role(
        "infra/modules/console/iam.tf data.aws_iam_policy_document.task_exec",
        None,
        {
            **dict.fromkeys(ECR_PULL, "ECS agent: pull the console image"),
            "logs:CreateLogStream": "ECS awslogs driver",
            "logs:PutLogEvents": "ECS awslogs driver",
            "secretsmanager:GetSecretValue": "ECS agent: inject VIGIL_CONSOLE_SECRET and, in token mode, VIGIL_CONSOLE_TOKEN (the container's `secrets`)",
        },
    ),
    ("network", "flow_logs"): Role(
        "infra/modules/network/main.tf data.aws_iam_policy_document.flow_logs",
        None,
        {
            "logs:CreateLogStream": "VPC flow logs service",
            "logs:DescribeLogStreams": "VPC flow logs service",
            "logs:PutLogEvents": "VPC flow logs service",
        },
    ),
}

# KMS actions a call needs when its resource is encrypted with a customer managed key (all ours are).
KMS_IMPLIED = {
    "kinesis:PutRecord": {"kms:GenerateDataKey"},
    "kinesis:PutRecords": {"kms:GenerateDataKey"},
    "kinesis:GetRecords": {"kms:Decrypt"},
    "kinesisvideo:GetMedia": {"kms:Decrypt"},
    "kinesisvideo:GetClip": {"kms:Decrypt"},
    "kinesisvideo:GetMediaForFragmentList": {"kms:Decrypt"},
    "kinesisvideo:GetImages": {"kms:Decrypt"},
    "kinesisvideo:PutMedia": {"kms:GenerateDataKey"},
    "s3:GetObject": {"kms:Decrypt"},
    "s3:PutObject": {"kms:GenerateDataKey"},
    "sns:Publish": {"kms:Decrypt", "kms:GenerateDataKey"},
    "sqs:SendMessage": {"kms:Decrypt", "kms:GenerateDataKey"},
    "sqs:ReceiveMessage": {"kms:Decrypt"},
    "secretsmanager:GetSecretValue": {"kms:Decrypt"},
    **{f"dynamodb:{op}": {"kms:Decrypt"} for op in (
        "GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem", "BatchWriteItem"
    )},
}


def granted(module_name: str, document_name: str) -> dict[str, list[str]]:
    """Action -> sids that grant it, over every statement (dynamic ones included)."""
    document = infra_hcl.module(module_name).policy_document(document_name)
    found: dict[str, list[str]] = {}
    for sid, statement in infra_hcl.statements_by_sid(document).items():
        if statement.get("effect", "Allow") == "Allow":
            for action in statement["actions"]:
                found.setdefault(action, []).append(sid)
    return found


@dataclass
class Audit:
    role: tuple[str, str]
    calls: dict[str, list[boto_calls.ApiCall]]  # action the code calls -> where
    granted: dict[str, list[str]]  # action -> sids

    @property
    def spec(self) -> Role:
        return ROLES[self.role]

    def role_name(self) -> str:
        return f"{self.role[0]}.{self.role[1]} ({self.spec.where})"

    def missing(self) -> list[str]:
        """One line per call whose action the role lacks."""
        return [
            f"{call.where()} calls {action}, which role {self.role_name()} lacks"
            for action, calls in sorted(self.calls.items())
            if not action.startswith("kms:") and action not in self.granted
            for call in calls
        ]

    def unused(self) -> list[str]:
        """One line per granted action that neither the code nor AWS needs."""
        return [
            f"role {self.role_name()} grants {action} (statement {', '.join(sids)}) but no code of "
            f"{self.spec.component or '(none)'} calls it and it is not in the role's aws_itself list"
            for action, sids in sorted(self.granted.items())
            if not action.startswith("kms:") and action not in self.calls and action not in self.spec.aws_itself
        ]

    def kms_needed(self) -> set[str]:
        actions = set(self.calls) | set(self.spec.aws_itself)
        return set().union(*(KMS_IMPLIED.get(action, set()) for action in actions))

    def kms_problems(self) -> list[str]:
        kms_granted = {action for action in self.granted if action.startswith("kms:")}
        needed = self.kms_needed()
        return [f"role {self.role_name()} lacks {a}, needed for its encrypted resources" for a in sorted(needed - kms_granted)] + [
            f"role {self.role_name()} grants {a} but no call it makes on an encrypted resource needs it"
            for a in sorted(kms_granted - needed)
        ]


@pytest.fixture(scope="module")
def scans() -> dict[str, boto_calls.ScanResult]:
    return {name: component.scan() for name, component in COMPONENTS.items()}


def audit(role: tuple[str, str], scans: dict[str, boto_calls.ScanResult]) -> Audit:
    component = ROLES[role].component
    calls = scans[component].actions() if component else {}
    return Audit(role, calls, granted(*role))


PRESENT = [name for name, component in COMPONENTS.items() if component.paths()]
# Components whose code exists but whose role is not in infra/ yet, listed so that they are not silent.
NO_ROLE_YET: dict[str, str] = {}
ABSENT = {
    "training launcher": "no file under training/ imports the sagemaker SDK or creates a sagemaker client yet",
    "deploy": f"none of {', '.join(DEPLOY_GLOBS)} exists yet",
}


# --- the scanner sees every call ------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(COMPONENTS))
def test_component_is_present_or_listed_as_not_yet_present(name):
    # GIVEN a component the issue names  THEN its code exists, or it is one we know is still to come
    if name in PRESENT:
        return
    assert name in ABSENT, f"component {name} has no code: {COMPONENTS[name].globs}"
    pytest.skip(f"{name}: not yet present ({ABSENT[name]})")


@pytest.mark.parametrize("name", PRESENT)
def test_scanner_understands_every_aws_call_of(name, scans):
    assert scans[name].problems == []


def test_every_present_component_runs_as_a_role(scans):
    # A component whose code calls AWS but that no role in ROLES is mapped to (e.g. the deploy script
    # the day it lands) must get its role in infra/ first, or be listed in NO_ROLE_YET with the reason.
    mapped = {role.component for role in ROLES.values()}
    unmapped = {
        name: sorted({call.where() for call in scans[name].calls})
        for name in PRESENT
        if name not in mapped and name not in NO_ROLE_YET and scans[name].calls
    }
    assert unmapped == {}


@pytest.mark.parametrize("name", sorted(NO_ROLE_YET))
def test_component_without_a_role_yet(name, scans):
    mapped = {role.component for role in ROLES.values()}
    assert name not in mapped, f"{name} has a role now: remove it from NO_ROLE_YET"
    actions = sorted(scans[name].actions()) if name in PRESENT else []
    pytest.skip(f"{name}: no role yet ({NO_ROLE_YET[name]}); its code calls {', '.join(actions) or 'nothing'}")


def test_every_role_in_terraform_is_audited():
    roles = set()
    for module_name in infra_hcl.module_names():
        resources = infra_hcl.module(module_name).resources
        # inline role policies, and managed policies a module offers for a role outside it (the redrive)
        for kind in ("aws_iam_role_policy", "aws_iam_policy"):
            for body in resources.get(kind, {}).values():
                document = re.fullmatch(r"\$\{data\.aws_iam_policy_document\.(\w+)\.json\}", body["policy"]).group(1)
                roles.add((module_name, document))
    assert roles == set(ROLES)


# --- least privilege ------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", sorted(ROLES), ids=lambda role: ".".join(role))
def test_role_grants_every_action_its_code_calls(role, scans):
    # GIVEN the actions the role's code calls  WHEN compared with the role's policy
    # THEN none is missing (each line says which file and line calls what)
    assert audit(role, scans).missing() == []


@pytest.mark.parametrize("role", sorted(ROLES), ids=lambda role: ".".join(role))
def test_role_grants_no_action_that_neither_code_nor_aws_calls(role, scans):
    assert audit(role, scans).unused() == []


@pytest.mark.parametrize("role", sorted(ROLES), ids=lambda role: ".".join(role))
def test_role_kms_actions_are_exactly_what_its_encrypted_calls_need(role, scans):
    assert audit(role, scans).kms_problems() == []


@pytest.mark.parametrize("role", sorted(ROLES), ids=lambda role: ".".join(role))
def test_aws_itself_lists_only_actions_the_role_grants(role):
    # The allow-list is not a loophole: each entry is granted (else it is stale and must go).
    assert sorted(set(ROLES[role].aws_itself) - set(granted(*role))) == []


def s3_object_prefixes(module_name: str, document_name: str) -> set[str]:
    document = infra_hcl.module(module_name).policy_document(document_name)
    prefixes = set()
    for statement in infra_hcl.statements(document):
        if any(action.startswith("s3:") and "Bucket" not in action for action in statement["actions"]):
            for resource in statement["resources"]:
                match = re.fullmatch(r"\$\{var\.archive_bucket_arn\}/([a-z0-9_-]+/)\*", resource)
                assert match, f"{module_name}.{document_name}: S3 object resource not under a prefix: {resource}"
                prefixes.add(match.group(1))
    return prefixes


def test_worker_s3_access_is_scoped_to_the_prefixes_its_code_writes(scans):
    # GIVEN the key prefixes the worker's code builds (keys.py, snapshot.py ...)
    in_code = set(scans["worker"].s3_key_prefixes)
    # THEN its role reaches exactly those prefixes of the archive bucket
    assert sorted(in_code) == sorted(s3_object_prefixes("worker", "task")), scans["worker"].s3_key_prefixes


# --- the scanner can fail: a synthetic component ---------------------------------------------------------

SYNTHETIC = '''
import boto3
from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

BUCKET_SERVICE = "s3"

def make_media(url):
    return boto3.client("kinesis-video-media", endpoint_url=url)

class Publisher:
    def __init__(self, client=None):
        self.client = client or boto3.client("kinesis")
        self.factory = make_media

    def send(self):
        self.client.put_records(StreamName="s", Records=[])
        self.factory("http://x").get_media(StreamName="s", StartSelector={})

def archive(path):
    s3 = boto3.session.Session().client(BUCKET_SERVICE)
    s3.upload_file(path, "b", "tmp/x.mp4")
    s3.get_paginator("list_objects_v2")
    s3.generate_presigned_url("get_object", Params={})
    key = f"clips/{path}"
    boto3.client("sagemaker-runtime").invoke_endpoint(EndpointName="e", Body=b"")
    DynamoDBPersistenceLayer(table_name="t")

def untyped(my_s3_client):
    my_s3_client.delete_object(Bucket="b", Key="k")
'''


def test_scanner_finds_each_kind_of_call_with_its_line(tmp_path):
    # GIVEN a module with each pattern the components use
    source = tmp_path / "synthetic.py"
    source.write_text(SYNTHETIC, encoding="utf-8")
    # WHEN scanned
    result = boto_calls.scan([source], tmp_path)
    # THEN every call is found with its IAM actions and its line
    assert sorted((call.line, call.method, call.actions, call.inferred) for call in result.calls) == [
        (16, "put_records", ("kinesis:PutRecords",), False),
        (17, "get_media", ("kinesisvideo:GetMedia",), False),
        (21, "upload_file", ("s3:PutObject",), False),
        (22, "get_paginator('list_objects_v2')", ("s3:ListBucket",), False),
        (23, "generate_presigned_url('get_object')", ("s3:GetObject",), False),
        (25, "invoke_endpoint", ("sagemaker:InvokeEndpoint",), False),
        (26, "DynamoDBPersistenceLayer",
         ("dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"), False),
        (29, "delete_object", ("s3:DeleteObject",), True),
    ]
    assert result.problems == []
    assert sorted(result.s3_key_prefixes) == ["clips/"]


def test_scanner_maps_a_transaction_to_the_item_actions_it_contains(tmp_path):
    # GIVEN a transaction of an update and a put, and one whose items it cannot read
    source = tmp_path / "review.py"
    source.write_text(
        "import boto3\n"
        "ddb = boto3.client('dynamodb')\n"
        "ddb.transact_write_items(TransactItems=[{'Update': {}}, {'Put': {}}])\n"
        "ddb.transact_write_items(TransactItems=items)\n",
        encoding="utf-8",
    )
    result = boto_calls.scan([source], tmp_path)
    # THEN IAM's item actions are what it needs (there is no dynamodb:TransactWriteItems action)
    assert [(call.line, call.actions) for call in result.calls] == [
        (3, ("dynamodb:PutItem", "dynamodb:UpdateItem"))
    ]
    assert result.problems == [
        (
            "review.py:4: dynamodb.transact_write_items whose TransactItems are not a literal list of "
            "{Put|Update|Delete|ConditionCheck: ...} entries the scanner can read"
        )
    ]


def test_scanner_follows_imports_into_the_functions_a_component_reaches(tmp_path):
    # GIVEN a component that calls one function of another package, which has another that it never calls
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "__init__.py").write_text("", encoding="utf-8")
    (tmp_path / "lib" / "store.py").write_text(
        "import boto3\n"
        "class Store:\n"
        "    def __init__(self):\n"
        "        self.s3 = boto3.client('s3')\n"
        "    def save(self):\n"
        "        self.s3.put_object(Bucket='b', Key='feedback/x', Body=b'')\n"
        "    def purge(self):\n"
        "        self.s3.delete_object(Bucket='b', Key='tmp/x')\n"
        "def label(store):\n"
        "    store.save()\n",
        encoding="utf-8",
    )
    (tmp_path / "app").mkdir()
    app = tmp_path / "app" / "review.py"
    app.write_text("from lib.store import Store, label\n\ndef review():\n    label(Store())\n", encoding="utf-8")
    # WHEN scanned with its imports
    result = boto_calls.scan_with_imports([app], tmp_path)
    # THEN the reached method's call counts, the unreached one's does not
    assert [(call.path, call.line, call.actions) for call in result.calls] == [
        ("lib/store.py", 6, ("s3:PutObject",))
    ]
    assert boto_calls.scan([app], tmp_path).calls == []


def test_scanner_reports_what_it_cannot_read(tmp_path):
    source = tmp_path / "odd.py"
    source.write_text('import boto3\nboto3.resource("s3")\nboto3.client("sns").publsh(Message="x")\n')
    assert boto_calls.scan([source], tmp_path).problems == [
        "odd.py:2: boto3.resource(...) is not understood by the scanner: use a client",
        "odd.py:3: sns client has no method 'publsh' the scanner knows",
    ]


def test_audit_names_the_file_line_and_role_of_a_missing_action():
    # GIVEN code that calls an action the role lacks, and a role that grants one nobody calls
    call = boto_calls.ApiCall("worker/x.py", 7, "kinesis", "put_record", ("kinesis:PutRecord",))
    finding = Audit(
        ("worker", "task"),
        {"kinesis:PutRecord": [call]},
        {"kinesis:PutRecords": ["KinesisAlertsPut"]},
    )
    # THEN both are reported, each on one line that says where and which role
    assert finding.missing() == [
        ("worker/x.py:7 kinesis.put_record calls kinesis:PutRecord, which role worker.task "
        "(infra/modules/worker/iam.tf data.aws_iam_policy_document.task) lacks")
    ]
    assert finding.unused() == [
        ("role worker.task (infra/modules/worker/iam.tf data.aws_iam_policy_document.task) grants "
        "kinesis:PutRecords (statement KinesisAlertsPut) but no code of worker calls it and it is not in "
        "the role's aws_itself list")
    ]


# --- environment: what the code reads, Terraform sets ------------------------------------------------------

# Read by the code but never set by Terraform, with the reason.
ENV_NOT_FROM_TERRAFORM = {
    "AWS_ENDPOINT_URL": "local twin only: points boto3 at the moto server; unset on AWS",
    "AWS_REGION": "set by the Lambda runtime (and by Terraform for the worker)",
    "AWS_DEFAULT_REGION": "set by the Lambda runtime",
}
ENV_LOCAL_PREFIX = "AWS_ENDPOINT_URL_"  # boto3's per-service endpoint overrides: the local twin only


def worker_environment() -> set[str]:
    return set(re.findall(r"\b([A-Z][A-Z0-9_]+) = ", infra_hcl.module("worker").locals["environment"]))


def lambda_environment() -> set[str]:
    return set(infra_hcl.module("alerts").resource("aws_lambda_function", "this")["environment"][0]["variables"])


def _unset(read: dict[str, list[str]], wired: set[str]) -> dict[str, list[str]]:
    return {
        name: where
        for name, where in sorted(read.items())
        if name not in wired and name not in ENV_NOT_FROM_TERRAFORM and not name.startswith(ENV_LOCAL_PREFIX)
    }


def test_every_environment_variable_the_worker_reads_is_set_by_terraform():
    read = boto_calls.reads_environment(COMPONENTS["worker"].paths())
    assert _unset(read, worker_environment()) == {}


def test_every_environment_variable_the_lambda_reads_is_set_by_terraform():
    read = boto_calls.reads_environment(COMPONENTS["alert_lambda"].paths())
    assert _unset(read, lambda_environment()) == {}


# Console variables (console/env.py) Terraform leaves unset, with the reason.
CONSOLE_ENV_NOT_FROM_TERRAFORM = {
    "VIGIL_CONSOLE_LOCAL_SITES": "token mode: the token operator sees every site (the default)",
    "VIGIL_CONSOLE_LINK_EXPIRY_S": "optional: the console's default link lifetime applies",
    "VIGIL_CONSOLE_OPERATORS_FILE": "local mode only: named operators' hashed tokens; on AWS the ALB signs in",
    "VIGIL_CONSOLE_SITE_TIMEZONES": "optional: sites without a zone are shown in UTC",
    "AWS_DEFAULT_REGION": "AWS_REGION is set instead (either is read)",
}


def console_environment() -> set[str]:
    task = infra_hcl.module("console").resource("aws_ecs_task_definition", "this")
    secrets = set(re.findall(r'\{name = "([A-Z0-9_]+)", valueFrom = ', task["container_definitions"]))
    return set(infra_hcl.module("console").locals["environment"]) | secrets


def test_every_environment_variable_the_console_reads_is_set_by_terraform():
    # GIVEN the names console/env.py declares (settings reads them through a table the scanner cannot follow)
    tree = ast.parse((REPO / "console" / "env.py").read_text(encoding="utf-8"))
    declared = {
        node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant)
        and any(isinstance(t, ast.Name) and t.id.endswith("_ENV") for t in node.targets)
    } | {
        element.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Tuple)
        for element in node.value.elts
        if isinstance(element, ast.Constant)
    }
    assert "VIGIL_ALERT_HISTORY_TABLE" in declared  # the parse found the names
    # THEN Terraform sets each (environment or secrets), or it is listed above with its reason
    assert sorted(declared - console_environment() - set(CONSOLE_ENV_NOT_FROM_TERRAFORM)) == []
    assert sorted(set(CONSOLE_ENV_NOT_FROM_TERRAFORM) & console_environment()) == []


def test_the_worker_declares_exactly_the_vigil_variables_terraform_sets():
    # GIVEN the names worker/env.py declares (config reads some through a table the scanner cannot follow)
    import worker.env

    declared = {value for name, value in vars(worker.env).items() if name.startswith("ENV_")}
    assert "VIGIL_FLEET_BATCH_MAX" in declared  # the names were found
    # THEN the task definition sets each of them, and sets no VIGIL_ variable the worker does not declare
    wired = {name for name in worker_environment() if name.startswith("VIGIL_")}
    assert (sorted(declared - wired), sorted(wired - declared)) == ([], [])


def test_terraform_sets_no_local_endpoint_override():
    for name in worker_environment() | lambda_environment() | console_environment():
        assert not name.startswith("AWS_ENDPOINT_URL"), name


def test_lambda_handler_path_is_a_function_of_the_code():
    # GIVEN the handler Terraform configures, "package.module.function"
    handler = infra_hcl.module("alerts").resource("aws_lambda_function", "this")["handler"]
    module_path, function = handler.rsplit(".", 1)
    source = REPO / (module_path.replace(".", "/") + ".py")
    # THEN that module exists and defines that function at top level
    tree = ast.parse(source.read_text(encoding="utf-8"))
    assert function in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


# --- no NAT: every service the worker's code calls has a VPC endpoint -------------------------------------

# boto3 service -> the VPC endpoint service that carries it (com.amazonaws.<region>.<name>).
ENDPOINT_SERVICE = {
    "kinesis": "kinesis-streams",
    "kinesisvideo": "kinesisvideo",
    "kinesis-video-media": "kinesisvideo",
    "kinesis-video-archived-media": "kinesisvideo",
    "sagemaker-runtime": "sagemaker.runtime",
    "s3": "s3",
    "dynamodb": "dynamodb",
    "logs": "logs",
    "sts": "sts",
}


def test_every_service_the_worker_calls_is_reachable_through_a_vpc_endpoint(scans):
    # GIVEN the services the worker's code calls, and the network module's endpoints (no NAT, no IGW)
    network = infra_hcl.module("network")
    interface = set(network.variables["interface_endpoint_services"]["default"])
    gateway = set(re.findall(r'"([a-z0-9.-]+)"', network.resource("aws_vpc_endpoint", "gateway")["for_each"]))
    called = {call.service for call in scans["worker"].calls}
    # THEN each one has an endpoint (an unknown service fails here until it is mapped and given one)
    unreachable = {
        service: sorted({call.where() for call in scans["worker"].calls if call.service == service})
        for service in sorted(called)
        if ENDPOINT_SERVICE.get(service) not in interface | gateway
    }
    assert unreachable == {}


def test_every_checkov_skip_names_a_check_and_gives_a_reason():
    skips = [
        (path.relative_to(REPO).as_posix(), number, line.strip())
        for path in sorted(infra_hcl.INFRA_DIR.rglob("*.tf"))
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if "checkov:skip" in line
    ]
    assert skips, "no checkov skips found: the pattern below would never be checked"
    for path, number, line in skips:
        assert re.fullmatch(r"#checkov:skip=CKV2?_AWS_\d+:[A-Z].{30,}", line), f"{path}:{number}: {line}"
