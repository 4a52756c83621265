// `@zbus/rpc/msgpack`: the msgpack body codec, opt-in (issue 19). It is the only module that imports
// `msgpackr` (an optional peer dependency), so apps that do not import it neither bundle nor install it.
import { Packr } from 'msgpackr';
import { type BodyCodec, MSGPACK_CONTENT_TYPE } from './codec.js';

// Records (a msgpackr extension) are off so that any msgpack implementation can read the bodies.
const packr = new Packr({ useRecords: false, moreTypes: false });

/**
 * msgpack via `msgpackr`, content type `application/x-msgpack`. Pass it where a codec is taken:
 * `new RpcInvoker(client, { topic, codec: msgpackCodec })`, `new RpcProcessor({ codecs: [msgpackCodec] })`,
 * `producer.publish({ topic, body, codec: msgpackCodec })`.
 */
export const msgpackCodec: BodyCodec = {
  name: 'msgpack',
  contentType: MSGPACK_CONTENT_TYPE,
  encode(value) {
    const out = packr.pack(value === undefined ? null : value);
    // msgpackr returns a Buffer on Node; hand out a plain view so callers see one type everywhere.
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  },
  decode(bytes) {
    if (bytes.length === 0) return undefined;
    return packr.unpack(bytes) as unknown;
  },
};

export { MSGPACK_CONTENT_TYPE };
