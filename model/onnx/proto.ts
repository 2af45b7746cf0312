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
 * objects (exact up to 2^53, far beyond any id or count a tree ensemble uses). A
 * Long per element would cost ~40 bytes each: 10^7 declared node ids would take
 * hundreds of MB before any validation could refuse them.
 */
class NumberReader extends protobuf.Reader {}
const baseInt64 = protobuf.Reader.prototype.int64;
Object.defineProperty(NumberReader.prototype, 'int64', {
  value: function int64(this: protobuf.Reader): number {
    const v = baseInt64.call(this) as unknown;
    return typeof v === 'number' ? v : (v as { toNumber(): number }).toNumber();
  },
});

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
