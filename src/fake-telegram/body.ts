// Request bodies the Bot API accepts (JSON, urlencoded, multipart/form-data) turned into
// one parameter map, and the image checks Telegram applies to uploaded photos.

/** An uploaded file part of a multipart request. */
export interface UploadedFile {
  kind: 'file';
  field: string;
  filename?: string;
  contentType?: string;
  data: Buffer;
}

/** A parameter value: JSON bodies keep their types; form fields are strings. */
export type ParamValue = string | number | boolean | null | object | UploadedFile;

export class BodyError extends Error {
  override name = 'BodyError';
}

export const isUploadedFile = (v: unknown): v is UploadedFile =>
  typeof v === 'object' && v !== null && (v as { kind?: unknown }).kind === 'file' && Buffer.isBuffer((v as UploadedFile).data);

/** Splits `type/subtype; a=b; c="d"` into the media type and its parameters. */
function parseHeaderParams(value: string): { value: string; params: Map<string, string> } {
  const params = new Map<string, string>();
  const parts = value.split(';');
  const head = (parts.shift() ?? '').trim().toLowerCase();
  // a quoted value may itself contain ';', so re-join greedily
  const rest = parts.join(';');
  const re = /\s*([^=;\s]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]*))\s*;?/g;
  for (const m of rest.matchAll(re)) {
    const key = (m[1] ?? '').toLowerCase();
    const raw = m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] ?? '').trim();
    params.set(key, raw);
  }
  return { value: head, params };
}

/** Parses a multipart/form-data body (as lenient as Telegram: header case and spacing are free). */
export function parseMultipart(body: Buffer, contentType: string): Map<string, ParamValue> {
  const boundary = parseHeaderParams(contentType).params.get('boundary');
  if (!boundary) throw new BodyError('multipart body without boundary');
  const out = new Map<string, ParamValue>();
  const delimiter = Buffer.from(`--${boundary}`);
  let pos = body.indexOf(delimiter);
  if (pos < 0) throw new BodyError('multipart boundary not found');
  for (;;) {
    pos += delimiter.length;
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) break; // closing "--"
    if (body[pos] === 0x0d && body[pos + 1] === 0x0a) pos += 2;
    const headerEnd = body.indexOf('\r\n\r\n', pos);
    if (headerEnd < 0) throw new BodyError('multipart part without header end');
    const headers = new Map<string, string>();
    for (const line of body.subarray(pos, headerEnd).toString('utf8').split('\r\n')) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const contentStart = headerEnd + 4;
    const next = body.indexOf(Buffer.from(`\r\n--${boundary}`), contentStart);
    if (next < 0) throw new BodyError('multipart part without closing boundary');
    const data = body.subarray(contentStart, next);
    const disposition = parseHeaderParams(headers.get('content-disposition') ?? '');
    const name = disposition.params.get('name');
    if (name !== undefined) {
      const filename = disposition.params.get('filename');
      if (filename !== undefined) {
        out.set(name, {
          kind: 'file',
          field: name,
          filename,
          contentType: headers.get('content-type'),
          data: Buffer.from(data),
        });
      } else {
        out.set(name, data.toString('utf8'));
      }
    }
    pos = next + 2;
  }
  return out;
}

/** Turns any accepted body (plus the query string) into one parameter map. */
export function parseParams(body: Buffer, contentType: string | undefined, query: URLSearchParams): Map<string, ParamValue> {
  const params = new Map<string, ParamValue>();
  for (const [k, v] of query) params.set(k, v);
  if (body.length === 0) return params;
  const type = parseHeaderParams(contentType ?? '').value;
  if (type === 'application/json') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      throw new BodyError("can't parse JSON object");
    }
    if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
      throw new BodyError("can't parse JSON object");
    }
    for (const [k, v] of Object.entries(parsed as Record<string, unknown>)) params.set(k, v as ParamValue);
  } else if (type === 'multipart/form-data') {
    for (const [k, v] of parseMultipart(body, contentType ?? '')) params.set(k, v);
  } else {
    // Telegram treats anything else as a urlencoded form
    for (const [k, v] of new URLSearchParams(body.toString('utf8'))) params.set(k, v);
  }
  return params;
}

// ---------------------------------------------------------------------------------------
// Images

export interface ImageInfo {
  format: 'png' | 'jpeg';
  width: number;
  height: number;
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Recognises a PNG or JPEG by its magic bytes and reads its size; undefined otherwise. */
export function sniffImage(data: Buffer): ImageInfo | undefined {
  if (data.length >= 24 && data.subarray(0, 8).equals(PNG_SIGNATURE) && data.toString('latin1', 12, 16) === 'IHDR') {
    return { format: 'png', width: data.readUInt32BE(16), height: data.readUInt32BE(20) };
  }
  if (data.length >= 4 && data[0] === 0xff && data[1] === 0xd8 && data[2] === 0xff) {
    let pos = 2;
    while (pos + 9 < data.length) {
      if (data[pos] !== 0xff) return undefined;
      const marker = data[pos + 1] ?? 0;
      if (marker === 0xff) {
        pos++;
        continue;
      }
      const isSof = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
      if (isSof) return { format: 'jpeg', height: data.readUInt16BE(pos + 5), width: data.readUInt16BE(pos + 7) };
      if (marker === 0xd9 || marker === 0xda) return undefined; // no frame header before the data
      pos += 2 + data.readUInt16BE(pos + 2);
    }
  }
  return undefined;
}
