#!/usr/bin/env python3
"""Reads and unpacks the wheels scripts/install-cuda-provider.sh uses (standard library only).

  node-version PACKAGE_JSON               the version of onnxruntime-node's package.json
  provider --wheel W --version V --target DIR
                                          checks that W is onnxruntime-gpu V, copies the CUDA
                                          provider's libraries out of it into DIR
  cuda-requirements --wheel W             the nvidia-* wheels its CUDA provider needs, one a line
  cuda-libs --wheels DIR --wheel W --target DIR
                                          checks DIR holds a wheel for each of those, copies
                                          every nvidia/*/lib/*.so* of DIR's nvidia-* wheels into
                                          one folder

Exits 1 with a message on stderr when a check fails.
"""

import argparse
import email.parser
import json
import os
import re
import shutil
import sys
import zipfile

# What onnxruntime-node needs beside libonnxruntime.so.1 to run `executionProviders: ['cuda']`
# (the same two files its own install script takes from NuGet).
PROVIDER_LIBRARIES = ("libonnxruntime_providers_shared.so", "libonnxruntime_providers_cuda.so")
NVIDIA_LIBRARY = re.compile(r"^nvidia/[^/]+/lib/[^/]+\.so(\.[0-9.]+)?$")


class Refused(Exception):
    pass


def wheel_metadata(wheel_path):
    with zipfile.ZipFile(wheel_path) as wheel:
        names = [name for name in wheel.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", name)]
        if len(names) != 1:
            raise Refused(f"{wheel_path} is not a wheel: it has {len(names)} */METADATA files, not 1")
        return email.parser.Parser().parsestr(wheel.read(names[0]).decode("utf-8"))


def normalized(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def node_version(package_json):
    with open(package_json, encoding="utf-8") as file:
        package = json.load(file)
    if package.get("name") != "onnxruntime-node":
        raise Refused(f"{package_json} is the package.json of {package.get('name')!r}, not of onnxruntime-node")
    return package["version"]


def extract_provider(wheel_path, version, target):
    metadata = wheel_metadata(wheel_path)
    name, found = metadata["Name"], metadata["Version"]
    if normalized(name or "") != "onnxruntime-gpu":
        raise Refused(f"{wheel_path} is the wheel of {name}, not of onnxruntime-gpu")
    if found != version:
        raise Refused(
            f"{wheel_path} is onnxruntime-gpu {found}, but onnxruntime-node is {version}: the provider libraries "
            f"must come from the same ONNX Runtime release (the interface between them and libonnxruntime is not "
            f"stable across versions); use onnxruntime-gpu=={version}"
        )
    with zipfile.ZipFile(wheel_path) as wheel:
        members = {os.path.basename(member): member for member in wheel.namelist() if member.startswith("onnxruntime/capi/")}
        missing = [library for library in PROVIDER_LIBRARIES if library not in members]
        if missing:
            raise Refused(f"{wheel_path} has no onnxruntime/capi/{' or '.join(missing)}")
        os.makedirs(target, exist_ok=True)
        for library in PROVIDER_LIBRARIES:
            copy_member(wheel, members[library], os.path.join(target, library))
            print(f"installed {os.path.join(target, library)}")


def cuda_requirements(wheel_path):
    """The wheel's `cuda` and `cudnn` extras, plus cuBLAS.

    The provider library links libcublas and libcublasLt, but onnxruntime-gpu's metadata does not
    list their wheel (1.30.0 lists cuda-runtime, cuda-nvrtc, cufft, curand and cudnn): it is named
    like the runtime's wheel (nvidia-cuda-runtime~=13.0 -> nvidia-cublas~=13.0, and
    nvidia-cuda-runtime-cu12 -> nvidia-cublas-cu12 for CUDA 12 builds).
    """
    requirements = []
    for line in wheel_metadata(wheel_path).get_all("Requires-Dist") or []:
        requirement, _, marker = line.partition(";")
        if re.search(r"extra\s*==\s*['\"](cuda|cudnn)['\"]", marker):
            requirements.append(requirement.strip().replace(" ", ""))
    runtime = next((r for r in requirements if r.startswith("nvidia-cuda-runtime")), None)
    if runtime is None:
        raise Refused(f"{wheel_path} lists no nvidia-cuda-runtime wheel in its `cuda` extra: which CUDA it needs is unknown")
    cublas = runtime.replace("nvidia-cuda-runtime", "nvidia-cublas", 1)
    if requirement_name(cublas) not in {requirement_name(r) for r in requirements}:
        requirements.append(cublas)
    return requirements


def requirement_name(requirement):
    return normalized(re.split(r"[<>=~!\[ ]", requirement, maxsplit=1)[0])


def extract_cuda_libs(wheels_dir, provider_wheel, target):
    wheels = {}
    for file in sorted(os.listdir(wheels_dir)):
        if file.endswith(".whl"):
            wheels[normalized(file.split("-")[0])] = os.path.join(wheels_dir, file)
    needed = [requirement_name(r) for r in cuda_requirements(provider_wheel)]
    missing = [name for name in needed if name not in wheels]
    if missing:
        raise Refused(f"{wheels_dir} has no wheel for {', '.join(missing)}")
    os.makedirs(target, exist_ok=True)
    count = 0
    # Every nvidia-* wheel there, not only those named: pip brought their own dependencies too
    # (cuFFT needs nvJitLink, cuDNN needs cuBLAS).
    nvidia = [name for name in wheels if name.startswith("nvidia-")]
    for name in nvidia:
        with zipfile.ZipFile(wheels[name]) as wheel:
            for member in wheel.namelist():
                if NVIDIA_LIBRARY.match(member):
                    copy_member(wheel, member, os.path.join(target, os.path.basename(member)))
                    count += 1
    print(f"installed {count} CUDA libraries from {len(nvidia)} wheels into {target}")


def copy_member(wheel, member, destination):
    # Written beside and renamed, so a process that loads the library never sees half a file.
    partial = destination + ".partial"
    with wheel.open(member) as source, open(partial, "wb") as out:
        shutil.copyfileobj(source, out)
    os.chmod(partial, 0o755)
    os.replace(partial, destination)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("node-version").add_argument("package_json")
    provider = commands.add_parser("provider")
    provider.add_argument("--wheel", required=True)
    provider.add_argument("--version", required=True)
    provider.add_argument("--target", required=True)
    commands.add_parser("cuda-requirements").add_argument("--wheel", required=True)
    libs = commands.add_parser("cuda-libs")
    libs.add_argument("--wheels", required=True)
    libs.add_argument("--wheel", required=True)
    libs.add_argument("--target", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "node-version":
            print(node_version(args.package_json))
        elif args.command == "provider":
            extract_provider(args.wheel, args.version, args.target)
        elif args.command == "cuda-requirements":
            print("\n".join(cuda_requirements(args.wheel)))
        else:
            extract_cuda_libs(args.wheels, args.wheel, args.target)
    except (Refused, OSError, zipfile.BadZipFile, KeyError, ValueError) as error:
        print(f"install-cuda-provider: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
