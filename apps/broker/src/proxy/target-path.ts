// Where a caller's request goes on the target. The caller controls the URL; the target may decode it again, treat
// `\` as `/`, resolve `..`, or read `//host` as another host. So the path is decoded here once, segment by
// segment, resolved, refused when it is ambiguous, and encoded again, and the result must still be under the
// target's origin and base path (issue 14 item 15): `/orders//10.0.0.1/x`, `/orders/../admin`, `%2e%2e`, `%2f`,
// `%5c`, `%252e` and `..;` never leave it.

/** A caller's path that the proxy will not forward: it leaves the base path or could be read as another path. */
export class PathRefused extends Error {
  readonly code = 'ZBUS_ERR_BAD_REQUEST';
  constructor(reason: string) {
    super(reason);
    this.name = 'PathRefused';
  }
}

/** `/`, `\`, control characters: a target would split the segment there or choke on it. */
function hidesSeparator(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f || c === 0x2f || c === 0x5c) return true;
  }
  return false;
}
/** A `%XX` left after one decoding: a target that decodes twice would see something else. */
const STILL_ENCODED = /%[0-9a-f]{2}/i;
/** RFC 3986 pchar characters that encodeURIComponent escapes but a path segment may hold as they are. */
const PCHAR_ESCAPED = /%(24|26|2B|2C|3B|3D|3A|40)/gi;

function decodeSegment(raw: string): string {
  let s: string;
  try {
    s = decodeURIComponent(raw);
  } catch {
    throw new PathRefused(`bad percent-encoding in path segment ${JSON.stringify(raw)}`);
  }
  if (hidesSeparator(s)) {
    throw new PathRefused(`path segment ${JSON.stringify(raw)} hides a separator or a control character`);
  }
  if (STILL_ENCODED.test(s)) throw new PathRefused(`path segment ${JSON.stringify(raw)} is encoded twice`);
  // `..;x` (Tomcat drops `;x`) and `.. ` read as `..` on some servers: only the plain forms are dot segments.
  const core = s.split(';', 1)[0]!.trimEnd();
  if ((core === '.' || core === '..') && core !== s) {
    throw new PathRefused(`path segment ${JSON.stringify(raw)} is an ambiguous dot segment`);
  }
  return s;
}

function encodeSegment(s: string): string {
  return encodeURIComponent(s).replace(PCHAR_ESCAPED, (e) => decodeURIComponent(e));
}

/**
 * The URL to request from the target for a caller's `originUrl`: its path minus the `/<entry>` segment (matched
 * without regard to case, as topic names are) and minus a `token` query parameter (the broker's auth, not the
 * service's), resolved and joined onto the target's base path. Throws PathRefused for a path that would leave
 * the base path, or that a target could read differently (encoded separators, double encoding).
 */
export function targetUrl(originUrl: string, entry: string, target: URL): URL {
  const q = originUrl.indexOf('?');
  const path = q < 0 ? originUrl : originUrl.slice(0, q);
  let query = q < 0 ? '' : originUrl.slice(q + 1);
  if (!path.startsWith('/')) throw new PathRefused('the request target must be a path starting with /');
  const segments: string[] = [];
  const raw = path.slice(1).split(/[/\\]/);
  for (let i = 0; i < raw.length; i++) {
    const s = decodeSegment(raw[i]!);
    if (i === 0 && s.toLowerCase() === entry.toLowerCase()) continue;
    const last = i === raw.length - 1;
    if (s === '.' || s === '..') {
      if (s === '..' && segments.pop() === undefined) {
        throw new PathRefused(`path ${JSON.stringify(path)} leaves the base path of the target`);
      }
      if (last) segments.push(''); // `a/..` and `a/.` end in a slash
      continue;
    }
    segments.push(s);
  }
  if (query !== '') {
    query = query
      .split('&')
      .filter((p) => p !== '' && p !== 'token' && !p.startsWith('token='))
      .join('&');
  }
  const base = target.pathname.endsWith('/') ? target.pathname.slice(0, -1) : target.pathname;
  // Joined as text onto the origin: `new URL('//host/x', target)` would be a URL of another host.
  const url = new URL(
    `${target.origin}${base}/${segments.map(encodeSegment).join('/')}${query === '' ? '' : `?${query}`}`,
  );
  if (url.origin !== target.origin || (url.pathname !== base && !url.pathname.startsWith(`${base}/`))) {
    throw new PathRefused(`path ${JSON.stringify(path)} leaves the base path of the target`);
  }
  return url;
}
