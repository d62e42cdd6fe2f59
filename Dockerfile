# syntax=docker/dockerfile:1
# The `taste` image: one image for every command (consume, serve, backfill, ...); the command is
# the first argument. Build (docs/deployment.md):
#   docker build -t taste:$(git rev-parse --short HEAD) .                    # CPU (default target)
#   docker build --target runtime-gpu -t taste:$(git rev-parse --short HEAD)-gpu .   # + WebGPU
#   docker build --target runtime-gpu --build-arg TASTE_CUDA_PROVIDER=pypi ...         # + CUDA
# Checked without an engine by scripts/validate-manifests.sh (hadolint) and test/deploy/.

ARG NODE_IMAGE=node:20-bookworm-slim
# Runs pip for the opt-in CUDA provider (cuda-provider stage); unused otherwise.
ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS build
WORKDIR /app
# onnxruntime-node's install script fetches the CUDA provider from NuGet; the CPU and WebGPU
# providers ship inside the package, so the default image skips it (see the GPU note below).
ARG ONNXRUNTIME_NODE_INSTALL=skip
ENV ONNXRUNTIME_NODE_INSTALL=${ONNXRUNTIME_NODE_INSTALL}
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
# Sources after the dependency layer, so a code change does not reinstall node_modules. What is
# left out (training/, node_modules/, dist/, ...) is listed in .dockerignore.
COPY . .
# Then: drop the dev dependencies; keep only this platform's native onnxruntime binaries (darwin
# and win32 are ~220 MB). build:prod compiles the sources only (tsconfig.build.json: no tests).
RUN npm run build:prod \
  && npm prune --omit=dev --no-audit --no-fund \
  && arch="$(node -p process.arch)" \
  && find node_modules/onnxruntime-node/bin -mindepth 2 -maxdepth 2 -type d ! -name linux -exec rm -rf {} + \
  && find node_modules/onnxruntime-node/bin -mindepth 3 -maxdepth 3 -type d ! -name "$arch" -exec rm -rf {} +

# ---------------------------------------------------------------------------------------------
FROM ${NODE_IMAGE} AS runtime
# bookworm-slim already has libstdc++6 and libgcc-s1 (apt needs them), which is all that
# libonnxruntime.so and the N-API binding link against besides glibc; the smoke check below
# loads them, so a missing library fails the build rather than the first pod.
ENV NODE_ENV=production \
  TASTE_MODEL_DIR=/app/models/default \
  TASTE_LOG_LEVEL=info
WORKDIR /app
COPY --from=build --chown=root:root /app/package.json ./
COPY --from=build --chown=root:root /app/node_modules/ node_modules/
COPY --from=build --chown=root:root /app/dist/ dist/
# .proto files are loaded at run time from <app>/proto (dist/proto/paths.ts: ../../proto).
COPY --from=build --chown=root:root /app/proto/taste/ proto/taste/
COPY --chown=root:root models/ models/
RUN node --input-type=module -e "const ort = await import('onnxruntime-node'); await ort.InferenceSession.create('models/default/model.onnx'); console.log('onnxruntime-node loads the default model')" \
  && node dist/cli/main.js consume --help >/dev/null
# The node image's unprivileged user `node`, by number so that Kubernetes' runAsNonRoot can
# verify it; the app files stay root-owned, read-only to it.
USER 1000:1000
# gRPC (taste serve).
EXPOSE 50051
ENTRYPOINT ["node", "dist/cli/main.js"]
CMD ["--help"]

# ---------------------------------------------------------------------------------------------
# The CUDA provider, opt-in: --build-arg TASTE_CUDA_PROVIDER=pypi runs
# scripts/install-cuda-provider.sh, which takes libonnxruntime_providers_{cuda,shared}.so from the
# PyPI wheel onnxruntime-gpu of exactly onnxruntime-node's version (refusing any other, e.g. a
# different --build-arg ONNXRUNTIME_GPU_VERSION) and the CUDA 13 / cuDNN 9 libraries from the
# nvidia-* wheels (about 2 GB more). Left at `none`, this stage only makes the empty folders that
# runtime-gpu copies.
FROM ${PYTHON_IMAGE} AS cuda-provider
ARG TASTE_CUDA_PROVIDER=none
ARG ONNXRUNTIME_GPU_VERSION=
WORKDIR /src
COPY scripts/install-cuda-provider.sh scripts/cuda-provider-wheel.py scripts/
COPY --from=build /app/node_modules/onnxruntime-node/package.json onnxruntime-node/package.json
RUN mkdir -p /out/providers /out/cuda-libs \
  && if [ "$TASTE_CUDA_PROVIDER" = pypi ]; then \
    bash scripts/install-cuda-provider.sh --package-dir onnxruntime-node --target /out/providers --cuda-libs /out/cuda-libs ${ONNXRUNTIME_GPU_VERSION:+--version "$ONNXRUNTIME_GPU_VERSION"}; \
  elif [ "$TASTE_CUDA_PROVIDER" != none ]; then echo "TASTE_CUDA_PROVIDER must be none or pypi, got $TASTE_CUDA_PROVIDER" >&2; exit 1; fi

# ---------------------------------------------------------------------------------------------
# GPU variant: `--execution-provider webgpu` (Dawn over Vulkan) needs the Vulkan loader and the
# glvnd libraries; the NVIDIA driver itself (libGLX_nvidia, the Vulkan ICD json) is mounted into
# the container by the NVIDIA container toolkit when the `graphics` capability is asked for.
# Same recipe as /work/shared/gpu (pack.sh / remote.sh), which ran on an H200. Built with
# TASTE_CUDA_PROVIDER=pypi it also runs `--execution-provider cuda` (or `auto`); libcuda.so.1,
# the driver, comes from the container toolkit (`compute` capability).
FROM runtime AS runtime-gpu
USER 0
# hadolint ignore=DL3008
RUN apt-get update \
  && apt-get install -y --no-install-recommends libvulkan1 libglvnd0 libgl1 libglx0 libegl1 libopengl0 libgles2 libx11-6 libx11-xcb1 libxext6 \
  && rm -rf /var/lib/apt/lists/*
COPY --from=cuda-provider --chown=root:root /out/providers/ node_modules/onnxruntime-node/bin/napi-v6/linux/x64/
COPY --from=cuda-provider --chown=root:root /out/cuda-libs/ /opt/cuda-libs/
# The provider loads these by name when a session starts: LD_LIBRARY_PATH has to be set before
# the process starts. The check fails the build if any library the provider links, but the
# driver's libcuda.so.1, is missing.
ENV LD_LIBRARY_PATH=/opt/cuda-libs
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN provider=node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so \
  && if [ -e "$provider" ]; then ! ldd "$provider" | grep 'not found' | grep -v 'libcuda\.so\.1'; fi
ENV NVIDIA_VISIBLE_DEVICES=all \
  NVIDIA_DRIVER_CAPABILITIES=compute,utility,graphics \
  TASTE_EXECUTION_PROVIDER=webgpu
USER 1000:1000
