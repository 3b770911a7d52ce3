"""The shape STYLE.md asks of infra/: five files per module, typed and documented variables, pinned
providers at the root and floors in modules, a root that only composes, singletons named `this`."""

from __future__ import annotations

import re
import shutil
import subprocess

import infra_hcl
import pytest

EXPECTED_MODULES = [
    "alerts", "console", "model", "network", "observability", "training_data", "video_ingest", "worker"
]
FIVE_FILES = {"main.tf", "variables.tf", "outputs.tf", "versions.tf", "README.md"}
CONFIGS = ["root", *EXPECTED_MODULES]


def config(name: str) -> infra_hcl.TerraformConfig:
    return infra_hcl.root() if name == "root" else infra_hcl.module(name)


def test_the_eight_modules_exist():
    # GIVEN infra/modules  WHEN listing its folders  THEN they are exactly the seven of the design and the
    # operator console (issue 9)
    assert infra_hcl.module_names() == EXPECTED_MODULES


@pytest.mark.parametrize("name", EXPECTED_MODULES)
def test_every_module_has_the_five_files_and_nothing_but_iam_besides(name):
    folder = infra_hcl.MODULES_DIR / name
    files = {path.name for path in folder.iterdir() if path.is_file()}
    assert FIVE_FILES <= files
    assert files - FIVE_FILES <= {"iam.tf"}


@pytest.mark.parametrize("name", EXPECTED_MODULES)
def test_module_readme_names_every_input_and_output(name):
    # GIVEN a module's README  THEN a reader finds each variable and output of the module in it
    readme = (infra_hcl.MODULES_DIR / name / "README.md").read_text(encoding="utf-8")
    module = infra_hcl.module(name)
    missing = [item for item in [*module.variables, *module.outputs] if f"`{item}`" not in readme]
    assert missing == []


@pytest.mark.parametrize("name", CONFIGS)
def test_every_variable_has_a_description_and_a_type(name):
    variables = config(name).variables
    assert variables, f"{name} declares no variables"
    undocumented = {var: sorted({"description", "type"} - set(body)) for var, body in variables.items()}
    assert {var: keys for var, keys in undocumented.items() if keys} == {}
    assert [var for var, body in variables.items() if not body["description"].strip()] == []


@pytest.mark.parametrize("name", CONFIGS)
def test_every_output_has_a_description(name):
    outputs = config(name).outputs
    assert outputs, f"{name} declares no outputs"
    assert [out for out, body in outputs.items() if not body.get("description", "").strip()] == []


@pytest.mark.parametrize("name", EXPECTED_MODULES)
def test_module_outputs_are_prefixed_not_bare(name):
    # "Outputs are prefixed (alert_stream_arn)": never a bare `arn`, `name`, `id`
    bare = {"arn", "name", "id", "url", "key_arn"}
    assert sorted(set(infra_hcl.module(name).outputs) & bare) == []


def test_root_pins_an_exact_aws_provider_version():
    providers = infra_hcl.root().required_providers()
    assert set(providers) == {"aws"}
    assert providers["aws"]["source"] == "hashicorp/aws"
    assert re.fullmatch(r"= 6\.\d+\.\d+", providers["aws"]["version"]), providers["aws"]["version"]


@pytest.mark.parametrize("name", EXPECTED_MODULES)
def test_modules_state_a_provider_floor_and_configure_no_provider(name):
    module = infra_hcl.module(name)
    assert module.required_providers() == {"aws": {"source": "hashicorp/aws", "version": ">= 6.0"}}
    assert module.providers == {}


def version_floor(name: str) -> tuple[int, int]:
    """The one `required_version = ">= X.Y"` of a configuration."""
    versions = [block["required_version"] for block in config(name).terraform if "required_version" in block]
    assert len(versions) == 1, f"{name}: {versions}"
    match = re.fullmatch(r">= (\d+)\.(\d+)", versions[0])
    assert match, f"{name}: required_version must be a floor '>= X.Y', not {versions[0]!r}"
    return int(match.group(1)), int(match.group(2))


@pytest.mark.parametrize("name", CONFIGS)
def test_terraform_version_floor_allows_cross_variable_validation(name):
    # validations that compare two variables (memory vs cpu, lifecycle days) need Terraform >= 1.9; the
    # console's write-only secret and ephemeral password need 1.11, and only the console may ask for it
    assert version_floor(name) == ((1, 11) if name in ("root", "console") else (1, 9))


def test_root_floor_is_the_highest_module_floor():
    # the root states what the whole configuration needs: no module may need a newer Terraform
    assert version_floor("root") == max(version_floor(name) for name in EXPECTED_MODULES)


def test_root_only_composes_modules():
    root = infra_hcl.root()
    assert root.resources == {}
    assert root.data == {}
    assert set(root.modules) == set(EXPECTED_MODULES)


PRIVATE_AND_PUBLIC = [("network", ["public", "this"])]


@pytest.mark.parametrize("name", EXPECTED_MODULES)
def test_singleton_resources_are_named_this(name):
    # GIVEN the module's resources by type  THEN a type used once is `this`; two of a kind are named by role
    resources = infra_hcl.module(name).resources
    misnamed = {
        type_: sorted(names) for type_, names in resources.items() if len(names) == 1 and "this" not in names
    }
    assert misnamed == {}
    # (the network's private subnets and route table stay `this` beside the NAT gateway's `public` ones)
    vague = {
        type_: sorted(names)
        for type_, names in resources.items()
        if len(names) > 1 and "this" in names and (name, sorted(names)) not in PRIVATE_AND_PUBLIC
    }
    assert vague == {}


def test_tfvars_example_documents_every_root_input():
    # GIVEN terraform.tfvars.example  THEN each root variable is assigned or shown commented out
    text = (infra_hcl.INFRA_DIR / "terraform.tfvars.example").read_text(encoding="utf-8")
    documented = set(re.findall(r"^#?\s*([a-z_][a-z0-9_]*)\s*=", text, flags=re.MULTILINE))
    assert sorted(set(infra_hcl.root().variables) - documented) == []


def test_tfvars_example_sets_every_required_root_input():
    example = infra_hcl.parse_file(infra_hcl.INFRA_DIR / "terraform.tfvars.example")
    root = infra_hcl.root()
    assert root.required_variables() == {
        "cameras",
        "model_image_uri",
        "model_data_url",
        "worker_image_tag",
        "console_image_tag",
        "console_domain_name",
        "console_certificate_arn",
        "console_operator_cidrs",
    }
    assert root.required_variables() <= set(example)
    assert set(example) <= set(root.variables)


def test_root_readme_says_how_to_apply_and_that_it_was_checked_offline():
    readme = (infra_hcl.INFRA_DIR / "README.md").read_text(encoding="utf-8")
    for phrase in ("terraform init", "terraform plan", "terraform apply", "python-hcl2", "tests/infra"):
        assert phrase in readme, phrase


@pytest.mark.skipif(shutil.which("terraform") is None, reason="no terraform binary on PATH")
def test_terraform_fmt_is_clean_where_terraform_is_installed():
    # fmt needs no provider, so it runs wherever the binary does (validate needs the provider: make infra-check)
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-list=true"],
        cwd=infra_hcl.INFRA_DIR, capture_output=True, text=True, timeout=60, check=False,
    )
    assert (result.returncode, result.stdout) == (0, "")
