/**
 * Jest environment for tests that run onnxruntime-node: the native binding builds its
 * output tensors with this process's typed-array constructors, which differ from the
 * ones of Jest's sandboxed global, so onnxruntime-common's `instanceof Float32Array`
 * checks fail there. Sharing the outer constructors with the sandbox fixes that.
 * Select it with a `@jest-environment ./bench/ort-jest-environment.js` docblock.
 */
const NodeEnvironment = require('jest-environment-node').TestEnvironment;

const SHARED = [
  'ArrayBuffer',
  'Float32Array',
  'Float64Array',
  'Int8Array',
  'Int16Array',
  'Int32Array',
  'BigInt64Array',
  'BigUint64Array',
  'Uint8Array',
  'Uint16Array',
  'Uint32Array',
];

class OrtEnvironment extends NodeEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of SHARED) this.global[name] = globalThis[name];
  }
}

module.exports = OrtEnvironment;
