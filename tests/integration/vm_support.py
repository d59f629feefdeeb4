"""A throwaway qemu guest with a real cgroup v2 hierarchy, for tests the host cannot host.

The host's memory controller is bound to cgroup v1 (and a test must never touch the host's
cgroups anyway), so enforcement is tested in a guest: Debian's kernel, an initramfs of
busybox and an init script, and the host's root file system shared read-only over 9p, so
the guest runs the host's python on this very tree (the host's /tmp is at /mnt; its own
/tmp is a tmpfs, where the SQLite database lives). The guest mounts cgroup2 with the
memory controller, runs one command chrooted into the shared root (with /tmp a guest
tmpfs), prints its output between markers on the serial console and powers off.

No KVM here: the guest runs under TCG emulation, which is slow but needs no privileges
beyond what qemu itself needs.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

BEGIN = "=====QUEBEC-VM-OUTPUT-BEGIN====="
END = "=====QUEBEC-VM-OUTPUT-END====="
# Loaded in this order: each after the modules it depends on.
MODULES = (
    "virtio_ring",
    "virtio",
    "virtio_pci_modern_dev",
    "virtio_pci_legacy_dev",
    "virtio_pci",
    "netfs",
    "fscache",
    "9pnet",
    "9pnet_virtio",
    "9p",
)
QEMU = "qemu-system-x86_64"
# The guest's /tmp is a tmpfs of its own; the host's /tmp is seen at /mnt (read-only).
HOST_TMP = "/mnt"


def in_guest(path: Path) -> str:
    """Where a file under the host's /tmp is seen in the guest."""
    relative = Path(path).resolve().relative_to("/tmp")
    return f"{HOST_TMP}/{relative}"


def seen_in_guest(path: Path) -> str:
    """Where any host path is seen in the guest (/tmp is the guest's own; the rest is the host's)."""
    resolved = Path(path).resolve()
    return in_guest(resolved) if resolved.is_relative_to("/tmp") else str(resolved)


def quebec_src() -> str:
    """The guest's path to the `quebec` package under test: an editable install's finder names a
    host path, which the guest cannot see when the checkout lives under /tmp (a CI clone)."""
    import quebec

    return seen_in_guest(Path(quebec.__file__).resolve().parents[1])


@dataclass(frozen=True)
class Guest:
    kernel: Path
    modules: Path  # /usr/lib/modules/<version>
    busybox: Path


def find_guest() -> Guest | str:
    """What the guest needs, or the sentence saying what is missing (the test's skip reason)."""
    if shutil.which(QEMU) is None:
        return f"{QEMU} is not installed (apt-get install qemu-system-x86 linux-image-amd64 busybox)"
    busybox = shutil.which("busybox")
    if busybox is None:
        return "busybox is not installed (apt-get install busybox)"
    for kernel in sorted(glob.glob("/boot/vmlinuz-*"), reverse=True):
        version = kernel.removeprefix("/boot/vmlinuz-")
        modules = Path("/usr/lib/modules") / version
        if all(_module(modules, name) is not None for name in MODULES) and os.access(kernel, os.R_OK):
            return Guest(Path(kernel), modules, Path(busybox))
    return "no readable /boot/vmlinuz-* with 9p and virtio modules (apt-get install linux-image-amd64)"


def _module(modules: Path, name: str) -> Path | None:
    found = list(modules.rglob(f"{name}.ko")) + list(modules.rglob(f"{name}.ko.xz"))
    return found[0] if found else None


def _libraries(binary: Path) -> list[Path]:
    """The shared libraries a dynamically linked busybox needs (ldd), the loader included."""
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=False).stdout
    libs = []
    for line in out.splitlines():
        for part in line.split():
            if part.startswith("/") and os.path.exists(part):
                libs.append(Path(part))
    return libs


INIT = """\
#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /host /usr/bin /usr/sbin /sbin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in {modules}; do insmod /modules/$m.ko 2>/dev/null || insmod /modules/$m.ko.xz; done
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=262144 host /host
mount -t proc proc /host/proc
mount -t sysfs sys /host/sys
mount -t cgroup2 none /host/sys/fs/cgroup
mount -t devtmpfs dev /host/dev
mount --bind /host/tmp /host/mnt
mount -t tmpfs tmp /host/tmp
echo +memory > /host/sys/fs/cgroup/cgroup.subtree_control
chroot /host /bin/sh -c 'cd /tmp && {command}' > /out.txt 2>&1
echo "exit=$?" >> /out.txt
echo {begin}
cat /out.txt
echo {end}
poweroff -f
"""


def build_initramfs(guest: Guest, command: str, workdir: Path) -> Path:
    """An initramfs (newc cpio) with busybox, its libraries, the 9p modules and an init running `command`."""
    root = workdir / "initramfs"
    if root.exists():
        shutil.rmtree(root)
    (root / "bin").mkdir(parents=True)
    (root / "modules").mkdir()
    shutil.copy2(guest.busybox, root / "bin" / "busybox")
    for lib in _libraries(guest.busybox):
        target = root / str(lib).lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(lib.resolve(), target)
    for name in MODULES:
        source = _module(guest.modules, name)
        assert source is not None
        shutil.copy2(source, root / "modules" / source.name)
    init = root / "init"
    init.write_text(
        INIT.format(modules=" ".join(MODULES), command=command, begin=BEGIN, end=END),
        encoding="utf-8",
    )
    init.chmod(0o755)
    image = workdir / "initramfs.cpio"
    files = subprocess.run(["find", "."], cwd=root, capture_output=True, text=True, check=True).stdout.encode()
    with image.open("wb") as out:
        subprocess.run(["cpio", "-o", "-H", "newc", "--quiet"], cwd=root, input=files, stdout=out, check=True)
    return image


@dataclass(frozen=True)
class Run:
    output: str  # what the command printed (stdout and stderr), with its exit status last
    console: str  # the whole serial console, for failure messages


def run_in_guest(guest: Guest, command: str, workdir: Path, *, memory_mb: int = 768, timeout: float = 240) -> Run:
    """Boot the guest, run `command` (a shell line, chrooted into the host's root) and return its output."""
    image = build_initramfs(guest, command, workdir)
    argv = [
        QEMU,
        "-accel",
        "tcg",
        "-m",
        str(memory_mb),
        "-smp",
        "1",
        "-nodefaults",
        "-no-reboot",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-kernel",
        str(guest.kernel),
        "-initrd",
        str(image),
        "-append",
        "console=ttyS0 quiet panic=-1 rdinit=/init",
        "-virtfs",
        "local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap",
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, errors="replace", timeout=timeout, check=False)
    console = proc.stdout + proc.stderr
    if BEGIN not in console or END not in console:
        raise AssertionError(f"the guest printed no result (qemu exit {proc.returncode}); console:\n{console[-6000:]}")
    output = console.split(BEGIN, 1)[1].split(END, 1)[0].replace("\r\n", "\n").strip("\n")
    return Run(output=output, console=console)


def script(source: str) -> str:
    return textwrap.dedent(source).strip() + "\n"
