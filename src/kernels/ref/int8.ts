// PLACEHOLDER (being written): the int8 kernels of IntKernels (ref). Every method throws until implemented.
import type { EngineMemory } from '../memory.js';
import type { IntKernels } from '../types.js';

export type Int8Kernels = Pick<IntKernels, 'int8PackedWeightBytes' | 'int8PackWeights' | 'convInt8' | 'requantize' | 'sumPlanesInt8' | 'maxPoolInt8' | 'addInt8'>;

export function createRefInt8Kernels(mem: EngineMemory): Int8Kernels {
  void mem;
  const todo = (name: string) => (): never => { throw new Error(`lowbit: int8 kernel ${name} is not implemented yet`); };
  return {
    int8PackedWeightBytes: todo('int8PackedWeightBytes'),
    int8PackWeights: todo('int8PackWeights'),
    convInt8: todo('convInt8'),
    requantize: todo('requantize'),
    sumPlanesInt8: todo('sumPlanesInt8'),
    maxPoolInt8: todo('maxPoolInt8'),
    addInt8: todo('addInt8'),
  };
}
