// The binary payload that dashboard/scatter.py's pack_payload writes:
//   "EXS1" | uint32 LE header length | header JSON (UTF-8, padded to 8 bytes) | buffers
// Each buffer sits at an 8-byte-aligned offset after the header: header.buffers[name] =
// [offset, dtype ("f32" | "u8" | "u32"), length].

const TYPES = { f32: Float32Array, u8: Uint8Array, u32: Uint32Array };

export function toBytes(data) {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  if (ArrayBuffer.isView(data)) return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  return null;
}

export function parsePayload(bytes) {
  if (
    bytes.length < 8 ||
    bytes[0] !== 0x45 || // E
    bytes[1] !== 0x58 || // X
    bytes[2] !== 0x53 || // S
    bytes[3] !== 0x31 // 1
  ) {
    throw new Error('not a scatter payload (bad magic)');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const length = view.getUint32(4, true);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + length)));
  let body = bytes.subarray(8 + length);
  // typed arrays need aligned offsets; the protobuf decoder may hand us any byteOffset
  if (body.byteOffset % 8 !== 0) body = body.slice();
  const buffers = {};
  for (const [name, [offset, kind, count]] of Object.entries(header.buffers || {})) {
    const Type = TYPES[kind];
    if (!Type) throw new Error(`unknown buffer type ${kind}`);
    if (offset + count * Type.BYTES_PER_ELEMENT > body.byteLength) {
      throw new Error(`buffer ${name} runs past the payload`);
    }
    buffers[name] = new Type(body.buffer, body.byteOffset + offset, count);
  }
  return { header, buffers };
}
