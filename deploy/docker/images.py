"""Build the stack's container images locally, without a registry, each tagged by a hash of
its inputs: an image whose inputs did not change is not built again.

    python3 deploy/docker/images.py build          # build what is missing, print the tags
    python3 deploy/docker/images.py build --env    # the same, as RENEWALS_IMAGE_*=<tag> lines
    python3 deploy/docker/images.py tags           # the tags the current inputs give, no build

The base of every image is `RENEWALS_BASE_IMAGE` when set (an official `debian:bookworm-slim`
where a registry is reachable); otherwise a Debian bookworm made here by debootstrap from the
mirror apt already uses, imported with `docker import` (../shared/MACHINE.md, Containers).

Each image's build context is assembled from exactly the files its tag is hashed from, so the
tag cannot miss an input. Standard library only: it runs before the project's venv exists.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
CONTEXTS = ROOT / ".local" / "docker" / "contexts"
KAFKA_LIBS = ROOT / ".local" / "kafka" / "libs"  # shared with deploy/local/infra.sh

DEBIAN_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
# The uv that installs the locked dependencies inside the services image.
UV_VERSION = "0.13.9"
# Extra certificate authorities this machine trusts (a TLS-inspecting egress proxy, a company
# CA): the images trust them too, or PyPI cannot be reached from a build on such a machine.
LOCAL_CAS = Path("/usr/local/share/ca-certificates")


def say(message: str) -> None:
    print(f"images: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Image:
    """One image: its Dockerfile, the repository files copied into its context (hashed), and an
    optional step that adds generated inputs to the context (hashed by their recipe)."""

    name: str
    dockerfile: str
    files: dict[str, str]  # path in the context -> path in the repository (file or folder)
    build_args: dict[str, str] = field(default_factory=dict)
    generate: Callable[[Path], str] | None = None  # fills the context, returns its recipe


def kafka_jars(context: Path) -> str:
    """Apache's broker jars from Maven Central, fetched once per pom into the same folder as the
    local broker's (deploy/local/infra.sh keeps the same marker), then copied into the context."""
    pom = ROOT / "deploy/local/kafka/pom.xml"
    stamp = hashlib.sha256(pom.read_bytes()).hexdigest()
    marker = KAFKA_LIBS / ".pom.sha256"
    if not (marker.exists() and marker.read_text().strip() == stamp):
        if not shutil.which("mvn"):
            sys.exit("images: mvn is missing: run deploy/local/bootstrap.sh (make install)")
        say("fetching the Kafka broker jars from Maven Central")
        staging = KAFKA_LIBS.with_name("libs.images-partial")
        shutil.rmtree(staging, ignore_errors=True)
        fetch = subprocess.run(
            ["mvn", "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
             f"-DoutputDirectory={staging}", "-DincludeScope=runtime"],
            capture_output=True, text=True,
        )  # fmt: skip
        if fetch.returncode != 0:
            sys.exit(f"images: mvn could not fetch the broker jars:\n{fetch.stdout}{fetch.stderr}")
        (staging / ".pom.sha256").write_text(f"{stamp}\n")
        shutil.rmtree(KAFKA_LIBS, ignore_errors=True)
        staging.rename(KAFKA_LIBS)
    shutil.copytree(KAFKA_LIBS, context / "libs", ignore=shutil.ignore_patterns(".*"))
    return f"kafka jars of pom {stamp}"


def local_cas(context: Path) -> str:
    target = context / "ca"
    target.mkdir()
    (target / ".keep").touch()  # COPY of a folder needs one file in it
    recipe = []
    for certificate in sorted(LOCAL_CAS.glob("*.crt")) if LOCAL_CAS.is_dir() else []:
        shutil.copy(certificate, target / certificate.name)
        recipe.append(hashlib.sha256(certificate.read_bytes()).hexdigest())
    return "cas " + " ".join(recipe)


IMAGES: tuple[Image, ...] = (
    Image(
        "postgres",
        "postgres.Dockerfile",
        {
            "postgres-entrypoint.sh": "deploy/docker/postgres/entrypoint.sh",
            "db_bootstrap.sql": "deploy/local/db_bootstrap.sql",
        },
    ),
    Image(
        "kafka",
        "kafka.Dockerfile",
        {
            "kafka-entrypoint.sh": "deploy/docker/kafka/entrypoint.sh",
            "server.properties": "deploy/local/kafka/server.properties",
            "log4j2.properties": "deploy/docker/kafka/log4j2.properties",
        },
        generate=kafka_jars,
    ),
    Image(
        "smtp",
        "smtp.Dockerfile",
        {"devsmtp.py": "deploy/local/devsmtp.py"},
    ),
    Image(
        "services",
        "services.Dockerfile",
        {
            "pyproject.toml": "pyproject.toml",
            "uv.lock": "uv.lock",
            "README.md": "README.md",  # the package's readme: hatchling reads it
            "shared": "shared",
            "services": "services",
            "deploy/local/create_topics.py": "deploy/local/create_topics.py",
        },
        build_args={"UV_VERSION": UV_VERSION},
        generate=local_cas,
    ),
)


def docker(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], text=True, **kwargs)  # type: ignore[call-overload]


def image_exists(tag: str) -> bool:
    return docker("image", "inspect", tag, capture_output=True).returncode == 0


def apt_mirror() -> str:
    """The Debian mirror this machine's apt uses (the only one reachable here, maybe)."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.exists():
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1]
    return DEFAULT_MIRROR


def base_image() -> str:
    official = os.environ.get("RENEWALS_BASE_IMAGE")
    if official:
        return official
    mirror = apt_mirror()
    recipe = f"debootstrap --variant=minbase {DEBIAN_SUITE} {mirror}"
    return f"renewals-debian:{DEBIAN_SUITE}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


def build_base(tag: str) -> None:
    if os.environ.get("RENEWALS_BASE_IMAGE"):
        if not image_exists(tag):
            say(f"pulling the base image {tag}")
            if docker("pull", tag).returncode != 0:
                sys.exit(
                    f"images: cannot pull {tag} (no registry reachable?): unset RENEWALS_BASE_IMAGE"
                    " to build the Debian base here with debootstrap"
                )
        return
    if image_exists(tag):
        return
    if not shutil.which("debootstrap"):
        sys.exit("images: debootstrap is missing: run deploy/docker/engine.sh up (it installs it)")
    mirror = apt_mirror()
    started = time.monotonic()
    say(f"making the Debian {DEBIAN_SUITE} base with debootstrap from {mirror} (about a minute)")
    with tempfile.TemporaryDirectory(prefix="renewals-debootstrap-", dir="/var/tmp") as root:
        subprocess.run(
            ["debootstrap", "--variant=minbase", DEBIAN_SUITE, root, mirror],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        # No caches or logs of the bootstrap itself in the image.
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists", "var/log"):
            for path in Path(root, leftover).glob("*"):
                if path.is_file():
                    path.unlink()
        tar = subprocess.Popen(["tar", "-C", root, "-c", "."], stdout=subprocess.PIPE)
        docker("import", "-", tag, stdin=tar.stdout, check=True, stdout=subprocess.DEVNULL)
        if tar.wait() != 0:
            sys.exit("images: tar of the debootstrap folder failed")
    say(f"base {tag} made in {time.monotonic() - started:.0f}s")


def assemble(image: Image, base: str) -> tuple[Path, str]:
    """The image's build context, and its tag: a hash of everything that went into it."""
    context = CONTEXTS / image.name
    shutil.rmtree(context, ignore_errors=True)
    context.mkdir(parents=True)
    digest = hashlib.sha256()
    digest.update(f"base {base}\n".encode())
    for key, value in sorted(image.build_args.items()):
        digest.update(f"arg {key}={value}\n".encode())
    files = {"Dockerfile": f"deploy/docker/{image.dockerfile}", **image.files}
    for target, source in sorted(files.items()):
        for path in sorted(_files_under(ROOT / source)):
            relative = path.relative_to(ROOT / source)
            destination = context / target / relative if relative.parts else context / target
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)
            digest.update(f"file {destination.relative_to(context)}\n".encode())
            digest.update(path.read_bytes())
    if image.generate is not None:
        digest.update(image.generate(context).encode())
    return context, f"renewals-{image.name}:{digest.hexdigest()[:12]}"


def _files_under(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return [
        p
        for p in path.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc")
    ]


def build(image: Image, base: str) -> str:
    context, tag = assemble(image, base)
    if image_exists(tag):
        say(f"{image.name:<9} {tag} (up to date)")
        return tag
    started = time.monotonic()
    say(f"{image.name:<9} building {tag}")
    args = [f"--build-arg=BASE_IMAGE={base}"]
    args += [f"--build-arg={key}={value}" for key, value in image.build_args.items()]
    log = context.parent / f"{image.name}.build.log"
    with log.open("w") as output:
        # Host networking: the build reaches Debian's mirror and PyPI the way this machine does.
        result = docker(
            "build", "--network=host", "--quiet", *args, "--tag", tag, str(context),
            stdout=output, stderr=subprocess.STDOUT,
        )  # fmt: skip
    if result.returncode != 0:
        sys.stderr.write(log.read_text()[-4000:])
        sys.exit(f"images: building {image.name} failed (full log: {log})")
    say(f"{image.name:<9} built {tag} in {time.monotonic() - started:.0f}s")
    return tag


def env_name(image: Image) -> str:
    return f"RENEWALS_IMAGE_{image.name.upper()}"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("action", choices=["build", "tags"])
    parser.add_argument("--env", action="store_true", help="print RENEWALS_IMAGE_*=<tag> lines")
    args = parser.parse_args()
    base = base_image()
    if args.action == "build":
        build_base(base)
        tags = {env_name(image): build(image, base) for image in IMAGES}
    else:
        tags = {env_name(image): assemble(image, base)[1] for image in IMAGES}
    for name, tag in tags.items():
        print(f"{name}={tag}" if args.env else tag)
    return 0


if __name__ == "__main__":
    sys.exit(main())
