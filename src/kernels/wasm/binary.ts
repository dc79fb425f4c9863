// PLACEHOLDER (being written): the binary kernels of IntKernels (wasm). Every method throws until implemented.
import type { EngineMemory } from '../memory.js';
import type { WasmBackend } from './backend.js';
import type { IntKernels } from '../types.js';

export type BinaryKernels = Pick<IntKernels, 'binarizePack' | 'binaryPackedWeightBytes' | 'binaryPackWeights' | 'convBinary'>;

export function createWasmBinaryKernels(be: WasmBackend, mem: EngineMemory): BinaryKernels {
  void mem; void be;
  const todo = (name: string) => (): never => { throw new Error(`lowbit: binary kernel ${name} is not implemented yet`); };
  return {
    binarizePack: todo('binarizePack'),
    binaryPackedWeightBytes: todo('binaryPackedWeightBytes'),
    binaryPackWeights: todo('binaryPackWeights'),
    convBinary: todo('convBinary'),
  };
}
