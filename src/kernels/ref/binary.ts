// PLACEHOLDER (being written): the binary kernels of IntKernels (ref). Every method throws until implemented.
import type { EngineMemory } from '../memory.js';
import type { IntKernels } from '../types.js';

export type BinaryKernels = Pick<IntKernels, 'binarizePack' | 'binaryPackedWeightBytes' | 'binaryPackWeights' | 'convBinary'>;

export function createRefBinaryKernels(mem: EngineMemory): BinaryKernels {
  void mem;
  const todo = (name: string) => (): never => { throw new Error(`lowbit: binary kernel ${name} is not implemented yet`); };
  return {
    binarizePack: todo('binarizePack'),
    binaryPackedWeightBytes: todo('binaryPackedWeightBytes'),
    binaryPackWeights: todo('binaryPackWeights'),
    convBinary: todo('convBinary'),
  };
}
