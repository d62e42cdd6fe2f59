import { access } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { arch, platform } from 'node:os';
import { dirname, join } from 'node:path';
import { ErrorCodes, TasteError } from '../common/errors.js';
import type { ExecutionProvider } from './inference-protocol.js';

// What ONNX Runtime says when a GPU provider cannot start is terse ("Failed to load shared
// library", "No supported adapters") and does not say how to fix it. This module turns those
// failures into coded errors that name what is missing, and holds the order `auto` tries.

/** The order `auto` tries: fastest first; the CPU provider last, since it starts wherever ONNX Runtime does. */
export const AUTO_PROVIDER_ORDER = ['cuda', 'webgpu', 'cpu'] as const satisfies readonly ExecutionProvider[];

/** The CUDA provider's libraries, which must lie beside libonnxruntime.so.1; the npm package ships neither. */
export const CUDA_PROVIDER_LIBRARIES = ['libonnxruntime_providers_shared.so', 'libonnxruntime_providers_cuda.so'] as const;

const CUDA_INSTALL_HINT = 'install them with scripts/install-cuda-provider.sh, which takes them from the PyPI wheel onnxruntime-gpu of the same version (README, GPU)';

/** A GPU provider `auto` passed over, and why. */
export interface SkippedProvider {
  provider: ExecutionProvider;
  reason: string;
}

/** The folder onnxruntime-node loads its native library from; it looks for provider libraries there too. */
export function onnxruntimeLibraryDir(): string {
  const packageJson = createRequire(import.meta.url).resolve('onnxruntime-node/package.json');
  return join(dirname(packageJson), 'bin', 'napi-v6', platform(), arch());
}

/** The CUDA provider's libraries that `libraryDir` lacks. */
export async function missingCudaLibraries(libraryDir: string): Promise<string[]> {
  const missing: string[] = [];
  for (const library of CUDA_PROVIDER_LIBRARIES) {
    try {
      await access(join(libraryDir, library));
    } catch {
      missing.push(library);
    }
  }
  return missing;
}

/** Refuses `cuda` before any worker starts when its provider libraries are not installed. */
export async function checkCudaInstalled(libraryDir: string): Promise<void> {
  const missing = await missingCudaLibraries(libraryDir);
  if (missing.length === 0) return;
  throw new TasteError(
    ErrorCodes.EXECUTION_PROVIDER_UNAVAILABLE,
    `the cuda execution provider is not installed: ${libraryDir} lacks ${missing.join(' and ')}; ${CUDA_INSTALL_HINT}`,
  );
}

const CUDA_START_FAILURE = /ExecutionProvider_Cuda|providers_cuda|cuda(Error|_error)|CUDA (failure|driver)|no CUDA-capable device/i;
const WEBGPU_START_FAILURE = /WebGPU adapter|No supported adapters|webgpu_context|vulkan/i;

/**
 * The error for a session ONNX Runtime could not create on `provider`: EXECUTION_PROVIDER_UNAVAILABLE,
 * saying what is missing, when the provider itself failed to start; MODEL_LOAD otherwise.
 */
export function sessionLoadError(provider: ExecutionProvider, modelPath: string, message: string, libraryDir: string): TasteError {
  if (provider === 'cuda' && CUDA_START_FAILURE.test(message)) {
    return new TasteError(
      ErrorCodes.EXECUTION_PROVIDER_UNAVAILABLE,
      `the cuda execution provider could not start: its libraries are in ${libraryDir}, but they also need the CUDA and cuDNN ` +
        `libraries on LD_LIBRARY_PATH (scripts/install-cuda-provider.sh --cuda-libs DIR installs them) and an NVIDIA GPU with its driver (libcuda.so.1). ` +
        `ONNX Runtime said: ${message}`,
    );
  }
  if (provider === 'webgpu' && WEBGPU_START_FAILURE.test(message)) {
    return new TasteError(
      ErrorCodes.EXECUTION_PROVIDER_UNAVAILABLE,
      `no GPU adapter was found for the webgpu execution provider: on Linux it runs over Vulkan and needs the Vulkan loader (libvulkan.so.1) ` +
        `and a GPU with its Vulkan driver. ONNX Runtime said: ${message.trim()}`,
    );
  }
  return new TasteError(ErrorCodes.MODEL_LOAD, `ONNX Runtime could not load ${modelPath} with the ${provider} provider: ${message}`);
}
