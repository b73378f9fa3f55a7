"""Finding Terraform and the provider, the portal's CLI config, and the child environment."""

from __future__ import annotations

import importlib.util
import os
import stat
from pathlib import Path

import pytest

from provisioning.terraform import toolchain
from provisioning.terraform.toolchain import (
    AWS_PROVIDER,
    ToolchainError,
    check_provider_available,
    cli_config_text,
    find_terraform,
    hcl_string,
    terraform_env,
    terraform_version,
    write_cli_config,
)

REPO_ROOT = Path(__file__).resolve().parents[2]


def make_program(path: Path, body: str = "exit 0", *, executable: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"#!/bin/sh\n{body}\n")
    if executable:
        path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


@pytest.fixture
def on_path(tmp_path: Path) -> Path:
    return make_program(tmp_path / "bin" / "terraform")


@pytest.fixture
def fallback(tmp_path: Path) -> Path:
    return make_program(tmp_path / "tools" / "lib" / "terraform")


# --- find_terraform ---------------------------------------------------------------------------


def test_configured_path_wins_over_path_and_fallback(
    tmp_path: Path, on_path: Path, fallback: Path
) -> None:
    configured = make_program(tmp_path / "opt" / "tofu")

    found = find_terraform(str(configured), search_path=str(on_path.parent), fallback=fallback)

    assert found == configured


def test_configured_command_name_is_looked_up_on_path(tmp_path: Path, fallback: Path) -> None:
    tofu = make_program(tmp_path / "bin" / "tofu")

    assert find_terraform("tofu", search_path=str(tofu.parent), fallback=fallback) == tofu


@pytest.mark.parametrize("configured", [None, ""])
def test_unset_uses_terraform_on_path(
    configured: str | None, on_path: Path, fallback: Path
) -> None:
    assert find_terraform(configured, search_path=str(on_path.parent), fallback=fallback) == on_path


def test_without_terraform_on_path_the_fallback_is_used(tmp_path: Path, fallback: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()

    assert find_terraform(None, search_path=str(empty), fallback=fallback) == fallback


def test_a_non_executable_terraform_is_never_returned(tmp_path: Path) -> None:
    make_program(tmp_path / "bin" / "terraform", executable=False)
    fallback = make_program(tmp_path / "tools" / "terraform", executable=False)

    with pytest.raises(ToolchainError) as raised:
        find_terraform(None, search_path=str(tmp_path / "bin"), fallback=fallback)

    message = str(raised.value)
    assert "Set TERRAFORM_BIN" in message
    assert "make tools" in message
    assert str(fallback) in message


def test_wrong_configured_path_is_an_error_not_a_silent_fallback(
    tmp_path: Path, on_path: Path, fallback: Path
) -> None:
    not_executable = make_program(tmp_path / "terraform-old", executable=False)

    with pytest.raises(ToolchainError, match=r"TERRAFORM_BIN=.* is not an executable file"):
        find_terraform(str(not_executable), search_path=str(on_path.parent), fallback=fallback)
    with pytest.raises(ToolchainError, match=r"TERRAFORM_BIN=.* is not an executable file"):
        find_terraform(str(tmp_path), search_path=str(on_path.parent), fallback=fallback)


def test_configured_name_missing_from_path_is_an_error(on_path: Path, fallback: Path) -> None:
    with pytest.raises(ToolchainError, match="TERRAFORM_BIN=tofu names no program on PATH"):
        find_terraform("tofu", search_path=str(on_path.parent), fallback=fallback)


def test_fallback_location_matches_the_install_script() -> None:
    script = REPO_ROOT / "scripts" / "install_terraform_fallback.py"
    spec = importlib.util.spec_from_file_location("install_terraform_fallback", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    assert module.BINARY == toolchain.FALLBACK_TERRAFORM
    assert toolchain.FALLBACK_TERRAFORM.is_relative_to(REPO_ROOT / ".tools")


# --- terraform_version ------------------------------------------------------------------------


def test_version_is_read_from_json(tmp_path: Path) -> None:
    binary = make_program(tmp_path / "tf", """echo '{"terraform_version": "1.7.5"}'""")

    assert terraform_version(binary) == "1.7.5"


def test_version_falls_back_to_the_text_line(tmp_path: Path) -> None:
    binary = make_program(tmp_path / "tf", "echo 'Terraform v1.0.3'; echo 'on linux_amd64'")

    assert terraform_version(binary) == "1.0.3"


def test_version_failure_says_what_failed(tmp_path: Path) -> None:
    binary = make_program(tmp_path / "tf", "echo 'no such command' >&2; exit 3")

    with pytest.raises(ToolchainError, match=r"version` failed \(3\): no such command"):
        terraform_version(binary)


def test_version_is_bounded_by_a_timeout(tmp_path: Path) -> None:
    binary = make_program(tmp_path / "tf", "exec sleep 30")

    with pytest.raises(ToolchainError, match=r"did not finish within 0\.5 s"):
        terraform_version(binary, timeout=0.5)


@pytest.mark.integration
def test_pinned_fallback_reports_1_0_3() -> None:
    if not os.access(toolchain.FALLBACK_TERRAFORM, os.X_OK):
        pytest.skip("the fallback is not installed; run `make tools`")

    assert terraform_version(toolchain.FALLBACK_TERRAFORM) == "1.0.3"


# --- hcl_string -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "quoted"),
    [
        ("/opt/tf-plugins", '"/opt/tf-plugins"'),
        ('say "hi"', r'"say \"hi\""'),
        (r"C:\plugins", r'"C:\\plugins"'),
        ("a\nb\tc\rd", r'"a\nb\tc\rd"'),
        ("/x/${HOME}", r'"/x/\u0024{HOME}"'),
        ("/x/%{if}", r'"/x/\u0025{if}"'),
        ("/x/$${HOME}", r'"/x/$\u0024{HOME}"'),
        ("$HOME 100% {}", '"$HOME 100% {}"'),
        ("bell\x07del\x7f", r'"bell\u0007del\u007f"'),
        ("unicodé ✓", '"unicodé ✓"'),
        ("", '""'),
    ],
)
def test_hcl_string_escapes(raw: str, quoted: str) -> None:
    assert hcl_string(raw) == quoted


def test_hcl_string_leaves_no_template_sequence_or_bare_quote() -> None:
    nasty = '${"}%{"}\\"\n'
    body = hcl_string(nasty)[1:-1]

    assert "${" not in body and "%{" not in body
    assert '"' not in body.replace('\\"', "")


# --- CLI config -------------------------------------------------------------------------------


def test_cli_config_with_mirror_takes_aws_only_from_it(tmp_path: Path) -> None:
    text = cli_config_text(plugin_mirror=Path("/opt/tf-plugins"), plugin_cache_dir=None)

    assert "provider_installation {" in text
    assert 'path    = "/opt/tf-plugins"' in text
    assert f'include = ["{AWS_PROVIDER}"]' in text
    assert f'exclude = ["{AWS_PROVIDER}"]' in text
    assert text.index("filesystem_mirror") < text.index("direct")
    assert "plugin_cache_dir" not in text
    assert "disable_checkpoint = true" in text


def test_cli_config_without_mirror_has_no_installation_block() -> None:
    text = cli_config_text(plugin_mirror=None, plugin_cache_dir=Path("/var/cache/tf"))

    assert "provider_installation" not in text
    assert 'plugin_cache_dir = "/var/cache/tf"' in text


def test_cli_config_escapes_paths() -> None:
    text = cli_config_text(plugin_mirror=Path('/m/${x}"y'), plugin_cache_dir=None)

    assert r'path    = "/m/\u0024{x}\"y"' in text


def test_cache_dir_with_a_dollar_is_refused() -> None:
    # Terraform expands environment variables in plugin_cache_dir, with no way to escape "$".
    with pytest.raises(ToolchainError, match="contains '\\$'"):
        cli_config_text(plugin_mirror=None, plugin_cache_dir=Path("/cache/$HOME"))


def test_write_cli_config_uses_an_existing_mirror(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    cache = tmp_path / "cache" / "plugins"

    written = write_cli_config(tmp_path / "work", plugin_mirror=mirror, plugin_cache_dir=cache)

    assert written == tmp_path / "work" / "terraform.rc"
    assert hcl_string(str(mirror)) in written.read_text()
    assert cache.is_dir()  # Terraform ignores a cache dir that does not exist
    assert [p.name for p in written.parent.iterdir()] == ["terraform.rc"]  # no temp file left


def test_write_cli_config_skips_a_missing_mirror(tmp_path: Path) -> None:
    written = write_cli_config(tmp_path, plugin_mirror=tmp_path / "nope", plugin_cache_dir=None)

    assert "provider_installation" not in written.read_text()


def test_write_cli_config_never_touches_the_users_terraformrc(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))

    write_cli_config(tmp_path / "work", plugin_mirror=None, plugin_cache_dir=None)

    assert list(home.iterdir()) == []


# --- terraform_env ----------------------------------------------------------------------------


def test_env_keeps_only_the_allow_list_and_what_the_caller_passes() -> None:
    base = {
        "PATH": "/usr/bin",
        "HOME": "/home/worker",
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp/w",
        "SECRET_KEY": "django-secret",
        "DATABASE_URL": "postgres://portal:pw@db/portal",
        "CELERY_BROKER_URL": "redis://:pw@redis/0",
        "AWS_SECRET_ACCESS_KEY": "worker-key",
        "AWS_PROFILE": "admin",
        "TF_LOG": "trace",
        "TF_CLI_CONFIG_FILE": "/home/worker/.terraformrc",
    }
    extra = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "TF_LOG": "info"}

    env = terraform_env(cli_config=Path("/w/terraform.rc"), base=base, extra=extra)

    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/worker",
        "LANG": "C.UTF-8",
        "TMPDIR": "/tmp/w",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "TF_LOG": "info",
        "TF_CLI_CONFIG_FILE": "/w/terraform.rc",
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",
    }


def test_env_settings_cannot_be_overridden_by_the_caller() -> None:
    extra = {"TF_CLI_CONFIG_FILE": "/home/me/.terraformrc", "TF_INPUT": "1"}

    env = terraform_env(cli_config=Path("/w/terraform.rc"), base={}, extra=extra)

    assert env["TF_CLI_CONFIG_FILE"] == "/w/terraform.rc"
    assert env["TF_INPUT"] == "0"


# --- check_provider_available -----------------------------------------------------------------


def test_no_mirror_means_the_registry(tmp_path: Path) -> None:
    assert check_provider_available(None) == ()
    assert check_provider_available(tmp_path / "missing") == ()


def test_mirror_without_the_aws_provider_names_the_setting(tmp_path: Path) -> None:
    (tmp_path / "registry.terraform.io" / "hashicorp" / "random" / "3.6.0").mkdir(parents=True)

    with pytest.raises(ToolchainError) as raised:
        check_provider_available(tmp_path, platform_name="linux_amd64")

    message = str(raised.value)
    assert message.startswith(f"TERRAFORM_PLUGIN_MIRROR={tmp_path} has no {AWS_PROVIDER}")
    assert "terraform providers mirror" in message


def test_unpacked_and_packed_mirror_layouts_are_found(tmp_path: Path) -> None:
    provider = tmp_path / AWS_PROVIDER
    (provider / "5.100.0" / "linux_amd64").mkdir(parents=True)
    (provider / "terraform-provider-aws_5.90.0_linux_amd64.zip").write_bytes(b"zip")
    (provider / "5.80.0" / "darwin_arm64").mkdir(parents=True)

    assert check_provider_available(tmp_path, platform_name="linux_amd64") == ("5.90.0", "5.100.0")


def test_mirror_for_another_platform_says_which(tmp_path: Path) -> None:
    (tmp_path / AWS_PROVIDER / "5.100.0" / "darwin_arm64").mkdir(parents=True)

    with pytest.raises(ToolchainError, match="only for darwin_arm64, not linux_amd64"):
        check_provider_available(tmp_path, platform_name="linux_amd64")
