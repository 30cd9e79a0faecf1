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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WORK = ROOT / ".local" / "docker"  # build contexts (one fresh folder per build) and build logs
KAFKA_LIBS = ROOT / ".local" / "kafka" / "libs"  # shared with deploy/local/infra.sh

DEBIAN_SUITE = "bookworm"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
# The uv that installs the locked dependencies inside the services image.
UV_VERSION = "0.13.9"
# Extra certificate authorities this machine trusts (a TLS-inspecting egress proxy, a company
# CA): the images trust them too, or PyPI cannot be reached from a build on such a machine.
LOCAL_CAS = Path("/usr/local/share/ca-certificates")


def say(message: str) -> None:
    print(f"images: {message}", file=sys.stderr, flush=True)


class GeneratedInput(Protocol):
    """Inputs of an image that are not repository files: hashed by their recipe, put into the
    build context only when the image is built."""

    def recipe(self) -> str: ...

    def fill(self, context: Path) -> None: ...


@dataclass(frozen=True)
class Image:
    """One image: its Dockerfile, the repository files its context holds, generated inputs.
    Its tag is a hash of all of them (and of its base and build arguments)."""

    name: str
    dockerfile: str
    files: dict[str, str]  # path in the context -> path in the repository (file or folder)
    build_args: dict[str, str] = field(default_factory=dict)
    generated: tuple[GeneratedInput, ...] = ()

    @property
    def repository(self) -> str:
        return f"renewals-{self.name}"


class KafkaJars:
    """Apache's broker jars from Maven Central, fetched once per pom into the same folder as the
    local broker's (deploy/local/infra.sh keeps the same marker)."""

    pom = ROOT / "deploy/local/kafka/pom.xml"

    def stamp(self) -> str:
        return hashlib.sha256(self.pom.read_bytes()).hexdigest()

    def recipe(self) -> str:
        return f"kafka jars of pom {self.stamp()}"

    def fill(self, context: Path) -> None:
        stamp = self.stamp()
        marker = KAFKA_LIBS / ".pom.sha256"
        if not (marker.exists() and marker.read_text().strip() == stamp):
            if not shutil.which("mvn"):
                sys.exit("images: mvn is missing: run deploy/local/bootstrap.sh (make install)")
            say("fetching the Kafka broker jars from Maven Central")
            staging = KAFKA_LIBS.with_name("libs.images-partial")
            shutil.rmtree(staging, ignore_errors=True)
            fetch = subprocess.run(
                ["mvn", "-q", "-B", "-f", str(self.pom), "dependency:copy-dependencies",
                 f"-DoutputDirectory={staging}", "-DincludeScope=runtime"],
                capture_output=True, text=True,
            )  # fmt: skip
            if fetch.returncode != 0:
                sys.exit(f"images: mvn could not fetch the jars:\n{fetch.stdout}{fetch.stderr}")
            (staging / ".pom.sha256").write_text(f"{stamp}\n")
            shutil.rmtree(KAFKA_LIBS, ignore_errors=True)
            staging.rename(KAFKA_LIBS)
        shutil.copytree(KAFKA_LIBS, context / "libs", ignore=shutil.ignore_patterns(".*"))


class LocalCertificateAuthorities:
    """The certificate authorities this machine trusts beyond Debian's, for the image to trust."""

    def certificates(self) -> list[Path]:
        return sorted(LOCAL_CAS.glob("*.crt")) if LOCAL_CAS.is_dir() else []

    def recipe(self) -> str:
        return "cas " + " ".join(
            hashlib.sha256(c.read_bytes()).hexdigest() for c in self.certificates()
        )

    def fill(self, context: Path) -> None:
        target = context / "ca"
        target.mkdir()
        (target / ".keep").touch()  # COPY of a folder needs one file in it
        for certificate in self.certificates():
            shutil.copy(certificate, target / certificate.name)


IMAGES: tuple[Image, ...] = (
    Image(
        "postgres",
        "postgres.Dockerfile",
        {
            "postgres-entrypoint.sh": "deploy/docker/postgres/entrypoint.sh",
            "db_bootstrap.sql": "deploy/local/db_bootstrap.sql",
            "postgres_tuning.conf": "deploy/local/postgres_tuning.conf",
        },
    ),
    Image(
        "kafka",
        "kafka.Dockerfile",
        {
            "kafka-entrypoint.sh": "deploy/docker/kafka/entrypoint.sh",
            "server.properties": "deploy/local/kafka/server.properties",
            "security.properties": "deploy/local/kafka/security.properties",
            "log4j2.properties": "deploy/docker/kafka/log4j2.properties",
        },
        generated=(KafkaJars(),),
    ),
    Image(
        "smtp",
        "smtp.Dockerfile",
        {"devsmtp.py": "deploy/local/devsmtp.py"},
    ),
    Image(
        "prometheus",
        "prometheus.Dockerfile",
        {
            "prometheus-entrypoint.sh": "deploy/docker/prometheus/entrypoint.sh",
            "alerts.yml": "deploy/monitoring/alerts.yml",
        },
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
            "deploy/local/kafka_security.py": "deploy/local/kafka_security.py",
            # The demo (`stack.sh demo`) runs from the services image: the package and its
            # sample events and upstream client, not shipped in the wheel.
            "deploy/__init__.py": "deploy/__init__.py",
            "deploy/local/__init__.py": "deploy/local/__init__.py",
            "deploy/local/demo.py": "deploy/local/demo.py",
            "deploy/local/client.py": "deploy/local/client.py",
            "deploy/local/samples.py": "deploy/local/samples.py",
        },
        build_args={"UV_VERSION": UV_VERSION},
        generated=(LocalCertificateAuthorities(),),
    ),
)


def docker(*args: str, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], text=True, **kwargs)  # type: ignore[call-overload]


def image_exists(tag: str) -> bool:
    return docker("image", "inspect", tag, capture_output=True).returncode == 0


def apt_mirrors() -> tuple[str, str]:
    """The Debian mirror and security mirror this machine's apt uses (maybe the only ones
    reachable here), from the deb822 or the classic sources format."""
    uris: list[str] = []
    deb822 = Path("/etc/apt/sources.list.d/debian.sources")
    if deb822.exists():
        uris += [
            line.split()[1] for line in deb822.read_text().splitlines() if line.startswith("URIs:")
        ]
    classic = Path("/etc/apt/sources.list")
    if classic.exists():
        uris += [
            line.split()[1]
            for line in classic.read_text().splitlines()
            if line.startswith("deb ") and "[" not in line.split()[1]
        ]
    mirror = next((u for u in uris if "security" not in u), DEFAULT_MIRROR)
    security = next((u for u in uris if "security" in u), DEFAULT_SECURITY_MIRROR)
    return mirror, security


def base_sources(mirror: str, security: str) -> str:
    """The base's apt sources: like an official Debian image, with updates and security."""
    return (
        f"deb {mirror} {DEBIAN_SUITE} main\n"
        f"deb {mirror} {DEBIAN_SUITE}-updates main\n"
        f"deb {security} {DEBIAN_SUITE}-security main\n"
    )


def base_image() -> str:
    official = os.environ.get("RENEWALS_BASE_IMAGE")
    if official:
        return official
    mirror, security = apt_mirrors()
    recipe = (
        f"debootstrap --variant=minbase {DEBIAN_SUITE} {mirror}\n{base_sources(mirror, security)}"
    )
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
    mirror, security = apt_mirrors()
    started = time.monotonic()
    say(f"making the Debian {DEBIAN_SUITE} base with debootstrap from {mirror} (about a minute)")
    with tempfile.TemporaryDirectory(prefix="renewals-debootstrap-", dir="/var/tmp") as root:
        subprocess.run(
            ["debootstrap", "--variant=minbase", DEBIAN_SUITE, root, mirror],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        Path(root, "etc/apt/sources.list").write_text(base_sources(mirror, security))
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
    repository = tag.split(":", 1)[0]
    prune_older(repository, keep=tag)


def image_id(reference: str) -> str | None:
    result = docker("image", "inspect", "--format", "{{.Id}}", reference, capture_output=True)
    return result.stdout.strip() if result.returncode == 0 else None


def repository_files(image: Image) -> list[tuple[str, Path]]:
    """(path in the context, file in the repository), the Dockerfile first."""
    files = {"Dockerfile": f"deploy/docker/{image.dockerfile}", **image.files}
    found = []
    for target, source in sorted(files.items()):
        for path in sorted(_files_under(ROOT / source)):
            relative = path.relative_to(ROOT / source)
            found.append((str(Path(target, relative)) if relative.parts else target, path))
    return found


def tag_of(image: Image, base: str) -> str:
    """A hash of everything the image is built from: its base (by image id once it exists, so
    a new base builds new images), build arguments, files and generated inputs."""
    digest = hashlib.sha256()
    digest.update(f"base {image_id(base) or base}\n".encode())
    for key, value in sorted(image.build_args.items()):
        digest.update(f"arg {key}={value}\n".encode())
    for target, path in repository_files(image):
        digest.update(f"file {target}\n".encode())
        digest.update(path.read_bytes())
    for generated in image.generated:
        digest.update(generated.recipe().encode())
    return f"{image.repository}:{digest.hexdigest()[:12]}"


def _files_under(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return [
        p
        for p in path.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.endswith(".pyc")
    ]


def build(image: Image, base: str) -> str:
    tag = tag_of(image, base)
    if image_exists(tag):
        say(f"{image.name:<9} {tag} (up to date)")
        return tag
    started = time.monotonic()
    say(f"{image.name:<9} building {tag}")
    args = [f"--build-arg=BASE_IMAGE={base}"]
    args += [f"--build-arg={key}={value}" for key, value in image.build_args.items()]
    WORK.mkdir(parents=True, exist_ok=True)
    log = WORK / f"{image.name}.build.log"
    # A folder of its own for each build: a concurrent build or edit cannot change it midway.
    with tempfile.TemporaryDirectory(prefix=f"context-{image.name}-", dir=WORK) as folder:
        context = Path(folder)
        for target, path in repository_files(image):
            (context / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, context / target)
        for generated in image.generated:
            generated.fill(context)
        with log.open("w") as output:
            # Host networking: the build reaches Debian's mirror and PyPI as this machine does.
            result = docker(
                "build", "--network=host", "--quiet", *args, "--tag", tag, str(context),
                stdout=output, stderr=subprocess.STDOUT,
            )  # fmt: skip
    if result.returncode != 0:
        sys.stderr.write(log.read_text()[-4000:])
        sys.exit(f"images: building {image.name} failed (full log: {log})")
    say(f"{image.name:<9} built {tag} in {time.monotonic() - started:.0f}s")
    prune_older(image.repository, keep=tag)
    return tag


def prune_older(repository: str, keep: str) -> None:
    """Earlier builds of an image (each code change makes one); an image a container still
    uses stays (docker refuses, quietly here)."""
    listed = docker(
        "image", "ls", repository, "--format", "{{.Repository}}:{{.Tag}}",
        capture_output=True,
    )  # fmt: skip
    for tag in listed.stdout.split():
        if tag != keep:
            docker("image", "rm", tag, capture_output=True)


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
        tags = {env_name(image): tag_of(image, base) for image in IMAGES}
    for name, tag in tags.items():
        print(f"{name}={tag}" if args.env else tag)
    return 0


if __name__ == "__main__":
    sys.exit(main())
