/**
 * The ONNX protobuf messages this package reads and writes, as a protobufjs
 * descriptor: the subset of onnx/onnx.proto (IR version 3..10) that a tree-ensemble
 * model uses. Field numbers and types follow onnx.proto; fields left out here
 * (subgraphs, sparse tensors, sequence/map types, training info, functions) are
 * skipped by the decoder, so a model that relies on them is refused by op_type or
 * output type later, never misread.
 *
 * Graph-valued attribute fields (AttributeProto.g/graphs) are deliberately absent:
 * without them no message can nest inside itself, so decoding depth is bounded no
 * matter what the file holds.
 */
import * as protobuf from 'protobufjs';

/** TensorProto.DataType values used here. */
export const DataType = { FLOAT: 1, UINT8: 2, INT32: 6, INT64: 7, STRING: 8, DOUBLE: 11 } as const;

/** AttributeProto.AttributeType values. */
export const AttrType = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

const descriptor = {
  nested: {
    onnx: {
      nested: {
        ModelProto: {
          fields: {
            ir_version: { type: 'int64', id: 1 },
            opset_import: { rule: 'repeated', type: 'OperatorSetIdProto', id: 8 },
            producer_name: { type: 'string', id: 2 },
            producer_version: { type: 'string', id: 3 },
            domain: { type: 'string', id: 4 },
            model_version: { type: 'int64', id: 5 },
            doc_string: { type: 'string', id: 6 },
            graph: { type: 'GraphProto', id: 7 },
            metadata_props: { rule: 'repeated', type: 'StringStringEntryProto', id: 14 },
          },
        },
        OperatorSetIdProto: { fields: { domain: { type: 'string', id: 1 }, version: { type: 'int64', id: 2 } } },
        StringStringEntryProto: { fields: { key: { type: 'string', id: 1 }, value: { type: 'string', id: 2 } } },
        GraphProto: {
          fields: {
            node: { rule: 'repeated', type: 'NodeProto', id: 1 },
            name: { type: 'string', id: 2 },
            initializer: { rule: 'repeated', type: 'TensorProto', id: 5 },
            doc_string: { type: 'string', id: 10 },
            input: { rule: 'repeated', type: 'ValueInfoProto', id: 11 },
            output: { rule: 'repeated', type: 'ValueInfoProto', id: 12 },
            value_info: { rule: 'repeated', type: 'ValueInfoProto', id: 13 },
          },
        },
        NodeProto: {
          fields: {
            input: { rule: 'repeated', type: 'string', id: 1 },
            output: { rule: 'repeated', type: 'string', id: 2 },
            name: { type: 'string', id: 3 },
            op_type: { type: 'string', id: 4 },
            domain: { type: 'string', id: 7 },
            attribute: { rule: 'repeated', type: 'AttributeProto', id: 5 },
            doc_string: { type: 'string', id: 6 },
          },
        },
        AttributeProto: {
          fields: {
            name: { type: 'string', id: 1 },
            ref_attr_name: { type: 'string', id: 21 },
            doc_string: { type: 'string', id: 13 },
            type: { type: 'int32', id: 20 },
            f: { type: 'float', id: 2 },
            i: { type: 'int64', id: 3 },
            s: { type: 'bytes', id: 4 },
            t: { type: 'TensorProto', id: 5 },
            floats: { rule: 'repeated', type: 'float', id: 7 },
            ints: { rule: 'repeated', type: 'int64', id: 8 },
            strings: { rule: 'repeated', type: 'bytes', id: 9 },
            tensors: { rule: 'repeated', type: 'TensorProto', id: 10 },
          },
        },
        TensorProto: {
          fields: {
            dims: { rule: 'repeated', type: 'int64', id: 1 },
            data_type: { type: 'int32', id: 2 },
            float_data: { rule: 'repeated', type: 'float', id: 4 },
            int32_data: { rule: 'repeated', type: 'int32', id: 5 },
            string_data: { rule: 'repeated', type: 'bytes', id: 6 },
            int64_data: { rule: 'repeated', type: 'int64', id: 7 },
            name: { type: 'string', id: 8 },
            doc_string: { type: 'string', id: 12 },
            raw_data: { type: 'bytes', id: 9 },
            external_data: { rule: 'repeated', type: 'StringStringEntryProto', id: 13 },
            data_location: { type: 'int32', id: 14 },
            double_data: { rule: 'repeated', type: 'double', id: 10 },
          },
        },
        ValueInfoProto: { fields: { name: { type: 'string', id: 1 }, type: { type: 'TypeProto', id: 2 }, doc_string: { type: 'string', id: 3 } } },
        TypeProto: {
          fields: { tensor_type: { type: 'TensorTypeProto', id: 1 }, denotation: { type: 'string', id: 6 } },
        },
        // TypeProto.Tensor, flattened (same wire format).
        TensorTypeProto: { fields: { elem_type: { type: 'int32', id: 1 }, shape: { type: 'TensorShapeProto', id: 2 } } },
        TensorShapeProto: { fields: { dim: { rule: 'repeated', type: 'DimensionProto', id: 1 } } },
        // TensorShapeProto.Dimension, flattened.
        DimensionProto: { fields: { dim_value: { type: 'int64', id: 1 }, dim_param: { type: 'string', id: 2 }, denotation: { type: 'string', id: 3 } } },
      },
    },
  },
};

const root = protobuf.Root.fromJSON(descriptor);
const ModelType = root.lookupType('onnx.ModelProto');

export interface OperatorSetId {
  domain?: string;
  version?: number;
}

export interface TensorMessage {
  dims?: number[];
  data_type?: number;
  float_data?: number[];
  int32_data?: number[];
  string_data?: Uint8Array[];
  int64_data?: number[];
  name?: string;
  raw_data?: Uint8Array;
  external_data?: { key?: string; value?: string }[];
  data_location?: number;
  double_data?: number[];
}

export interface AttributeMessage {
  name?: string;
  ref_attr_name?: string;
  type?: number;
  f?: number;
  i?: number;
  s?: Uint8Array;
  t?: TensorMessage;
  floats?: number[];
  ints?: number[];
  strings?: Uint8Array[];
  tensors?: TensorMessage[];
}

export interface NodeMessage {
  input?: string[];
  output?: string[];
  name?: string;
  op_type?: string;
  domain?: string;
  attribute?: AttributeMessage[];
  doc_string?: string;
}

export interface ValueInfoMessage {
  name?: string;
  type?: { tensor_type?: { elem_type?: number; shape?: { dim?: { dim_value?: number; dim_param?: string }[] } } };
  doc_string?: string;
}

export interface GraphMessage {
  node?: NodeMessage[];
  name?: string;
  initializer?: TensorMessage[];
  doc_string?: string;
  input?: ValueInfoMessage[];
  output?: ValueInfoMessage[];
  value_info?: ValueInfoMessage[];
}

export interface ModelMessage {
  ir_version?: number;
  opset_import?: OperatorSetId[];
  producer_name?: string;
  producer_version?: string;
  domain?: string;
  model_version?: number;
  doc_string?: string;
  graph?: GraphMessage;
  metadata_props?: { key?: string; value?: string }[];
}

/**
 * A Reader whose 64-bit integers come back as JavaScript numbers instead of Long
 * objects. A Long per element would cost ~40 bytes each: 10^7 declared node ids would
 * take hundreds of MB before any validation could refuse them. The varint is read as
 * two 32-bit halves (two's complement, as protobuf writes negative int64s in 10 bytes),
 * so every integer within ±2^53 is exact, -1 included. Integers beyond ±2^53 have no
 * exact number: they decode as ±Infinity, which the importer refuses by attribute name
 * where it needs an integer and treats as "past the end" where ONNX does (Slice ends).
 */
class NumberReader extends protobuf.Reader {}
Object.defineProperty(NumberReader.prototype, 'int64', {
  value: function int64(this: protobuf.Reader): number {
    const buf = this.buf;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.len) throw new RangeError(`index out of range: ${this.pos} + 1 > ${this.len}`);
      const b = buf[this.pos++] & 127;
      if (i < 4) lo |= b << (7 * i);
      else if (i === 4) {
        lo |= (b & 15) << 28;
        hi = b >>> 4;
      } else hi |= b << (7 * i - 32);
      if (buf[this.pos - 1] < 128) return int64Number(lo >>> 0, hi >>> 0);
    }
    throw new Error(`invalid varint encoding at offset ${this.pos}`);
  },
});

/** The two's-complement int64 hi:lo as a number: exact within ±2^53, else ±Infinity. */
export function int64Number(lo: number, hi: number): number {
  if (hi >= 0x80000000) {
    // Negative: magnitude = ~(hi:lo) + 1.
    const mLo = (~lo + 1) >>> 0;
    const mHi = (~hi + (mLo === 0 ? 1 : 0)) >>> 0;
    return mHi > 0x200000 || (mHi === 0x200000 && mLo > 0) ? -Infinity : -(mHi * 2 ** 32 + mLo);
  }
  return hi > 0x200000 || (hi === 0x200000 && lo > 0) ? Infinity : hi * 2 ** 32 + lo;
}

/** Raised for bytes that are not a decodable ModelProto; the message is the protobuf reader's, for the caller to translate. */
export class ProtobufDecodeError extends Error {
  constructor(
    readonly detail: string,
    readonly offset: number | undefined,
  ) {
    super(detail);
    this.name = 'ProtobufDecodeError';
  }
}

/** Decodes a ModelProto. Throws ProtobufDecodeError for truncated or corrupt bytes. */
export function decodeModel(bytes: Uint8Array): ModelMessage {
  const reader = new NumberReader(bytes);
  try {
    const message = ModelType.decode(reader);
    return message as unknown as ModelMessage;
  } catch (err) {
    // protobufjs says "index out of range: a + b > c" for truncation and "invalid wire type" for garbage;
    // deeply nested groups exhaust the stack (RangeError), which is corruption too.
    const detail = err instanceof Error ? err.message : String(err);
    throw new ProtobufDecodeError(detail, reader.pos);
  }
}

/** Encodes a ModelProto given as a plain object (field names as in onnx.proto). */
export function encodeModel(model: ModelMessage): Uint8Array {
  return ModelType.encode(model as unknown as protobuf.Message).finish();
}

/**
 * Element counts of every attribute of every graph node (the largest per name), read from
 * the wire format without decoding anything: a pass over the bytes that allocates nothing
 * per element. Lets the importer refuse a file that declares 10^7 nodes before protobufjs
 * builds a number or a buffer per entry. Returns undefined for bytes it cannot walk (the
 * decoder then reports the corruption with its offset).
 */
export function scanAttributeCounts(bytes: Uint8Array): Map<string, number> | undefined {
  const counts = new Map<string, number>();
  let pos = 0;
  const varint = (): number => {
    let v = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= bytes.length) throw new RangeError('truncated');
      const b = bytes[pos++];
      v += (b & 127) * scale;
      if (b < 128) return v;
      scale *= 128;
    }
    throw new RangeError('bad varint');
  };
  /** Calls onField(field, wireType, start, end) for each field of the message in [start, end); end of a LEN field's payload, else the field's value end. */
  const fields = (start: number, end: number, onField: (field: number, wire: number, from: number, to: number) => void): void => {
    pos = start;
    while (pos < end) {
      const tag = varint();
      const wire = tag % 8;
      const field = Math.floor(tag / 8);
      let from = pos;
      if (wire === 0) varint();
      else if (wire === 1) pos += 8;
      else if (wire === 5) pos += 4;
      else if (wire === 2) {
        const len = varint();
        from = pos;
        pos += len;
      } else throw new RangeError('unsupported wire type');
      if (pos > end) throw new RangeError('truncated');
      const resume = pos;
      onField(field, wire, from, pos);
      pos = resume;
    }
  };
  const packedVarints = (from: number, to: number): number => {
    let n = 0;
    for (let i = from; i < to; i++) if (bytes[i] < 128) n++;
    return n;
  };
  const tensorElements = (from: number, to: number): number => {
    let dims = 1;
    let rawBytes = 0;
    let type = 0;
    let listed = 0;
    fields(from, to, (f, wire, a, b) => {
      if (f === 1) {
        // dims, packed or not
        pos = a;
        if (wire === 0) dims *= Math.max(1, varint());
        else while (pos < b) dims *= Math.max(1, varint());
      }
      if (f === 2 && wire === 0) {
        pos = a;
        type = varint();
      }
      if (f === 9) rawBytes = b - a;
      if (f === 4 || f === 10) listed += wire === 2 ? (b - a) / (f === 4 ? 4 : 8) : 1;
      if (f === 5 || f === 7) listed += wire === 2 ? packedVarints(a, b) : 1;
      if (f === 6) listed += 1;
    });
    const size = type === DataType.DOUBLE || type === DataType.INT64 ? 8 : type === DataType.UINT8 ? 1 : 4;
    return Math.max(dims, rawBytes / size, listed);
  };
  try {
    fields(0, bytes.length, (f, wire, a, b) => {
      if (f !== 7 || wire !== 2) return; // graph
      fields(a, b, (gf, gw, ga, gb) => {
        if (gf !== 1 || gw !== 2) return; // node
        fields(ga, gb, (nf, nw, na, nb) => {
          if (nf !== 5 || nw !== 2) return; // attribute
          let name = '';
          let n = 0;
          fields(na, nb, (af, aw, aa, ab) => {
            if (af === 1 && aw === 2) name = Buffer.from(bytes.buffer, bytes.byteOffset + aa, ab - aa).toString('utf8');
            else if (af === 7) n += aw === 2 ? (ab - aa) / 4 : 1; // floats
            else if (af === 8) n += aw === 2 ? packedVarints(aa, ab) : 1; // ints
            else if (af === 9) n += 1; // strings
            else if (af === 5 && aw === 2) n = Math.max(n, tensorElements(aa, ab)); // t
          });
          counts.set(name, Math.max(counts.get(name) ?? 0, n));
        });
      });
    });
  } catch {
    return undefined;
  }
  return counts;
}
