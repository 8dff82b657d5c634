// Just enough X.509 to be our own certificate authority: ECDSA P-256 keys from node:crypto and a
// small DER writer for the certificate itself. Node can parse certificates but not make them, and
// the image has no openssl binary; see docs/adr/0012-webhook-tls.md.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { isIP } from 'node:net';

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

const tlv = (tag: number, ...content: Buffer[]) => {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
};
const seq = (...c: Buffer[]) => tlv(0x30, ...c);
const set = (...c: Buffer[]) => tlv(0x31, ...c);
const bool = (v: boolean) => tlv(0x01, Buffer.from([v ? 0xff : 0x00]));
const octets = (b: Buffer) => tlv(0x04, b);
const utf8 = (s: string) => tlv(0x0c, Buffer.from(s, 'utf8'));
const explicit = (n: number, c: Buffer) => tlv(0xa0 | n, c);

function integer(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0 && ((b[i + 1] as number) & 0x80) === 0) i++;
  const trimmed = b.subarray(i);
  return tlv(0x02, ((trimmed[0] as number) & 0x80) !== 0 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

/** A BIT STRING of whole bytes (keys, signatures), or of flags with the unused trailing bits counted. */
function bits(b: Buffer, flags = false): Buffer {
  let unused = 0;
  if (flags && b.length > 0) {
    const last = b[b.length - 1] as number;
    while (unused < 8 && (last & (1 << unused)) === 0) unused++;
  }
  return tlv(0x03, Buffer.from([unused % 8]), b);
}

function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split('.').map(Number) as [number, number, ...number[]];
  const out = [40 * a + b];
  for (const n of rest) {
    const chunk = [n & 0x7f];
    for (let v = Math.floor(n / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift((v & 0x7f) | 0x80);
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
  // RFC 5280: UTCTime up to 2049, GeneralizedTime from 2050.
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(`${iso.slice(2)}Z`)) : tlv(0x18, Buffer.from(`${iso}Z`));
}

const OID = {
  ecdsaSha256: '1.2.840.10045.4.3.2',
  commonName: '2.5.4.3',
  organization: '2.5.4.10',
  basicConstraints: '2.5.29.19',
  keyUsage: '2.5.29.15',
  extKeyUsage: '2.5.29.37',
  serverAuth: '1.3.6.1.5.5.7.3.1',
  subjectAltName: '2.5.29.17',
  subjectKeyId: '2.5.29.14',
  authorityKeyId: '2.5.29.35',
};

const name = (cn: string) => seq(set(seq(oid(OID.organization), utf8('ai-envelope'))), set(seq(oid(OID.commonName), utf8(cn))));
const extension = (id: string, critical: boolean, value: Buffer) => seq(oid(id), ...(critical ? [bool(true)] : []), octets(value));

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  const [head = '', tail = ''] = ip.split('::');
  const groups = (s: string) => (s ? s.split(':') : []);
  const h = groups(head);
  const t = groups(tail);
  const all = ip.includes('::') ? [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t] : h;
  return Buffer.concat(all.map((g) => Buffer.from(g.padStart(4, '0'), 'hex')));
}

/** The key identifier RFC 5280 suggests: SHA-1 of the subjectPublicKey bits. */
function keyId(spki: Buffer): Buffer {
  // The P-256 SPKI is fixed-layout: the last 65 bytes are the uncompressed point.
  return createHash('sha1').update(spki.subarray(spki.length - 65)).digest();
}

export interface Issued {
  certPem: string;
  keyPem: string;
}

export interface IssueOptions {
  commonName: string;
  notBefore: Date;
  notAfter: Date;
  isCA: boolean;
  /** For serving certificates: names and addresses the certificate is valid for. */
  hosts?: string[];
  /** Signs with this CA; without it the certificate signs itself. */
  issuer?: Issued;
}

export function issue(o: IssueOptions): Issued {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = publicKey.export({ type: 'spki', format: 'der' });
  let signer: KeyObject = privateKey;
  let issuerName: Buffer = name(o.commonName);
  let authorityKeyId: Buffer = keyId(spki);
  if (o.issuer) {
    const ca = new X509Certificate(o.issuer.certPem);
    signer = createPrivateKey(o.issuer.keyPem);
    issuerName = issuerNameDer(ca);
    authorityKeyId = keyId(createPublicKey(o.issuer.certPem).export({ type: 'spki', format: 'der' }));
  }
  const serial = randomBytes(16);
  serial[0] = (serial[0] as number) & 0x7f;
  const algorithm = seq(oid(OID.ecdsaSha256));
  const exts: Buffer[] = [
    extension(OID.basicConstraints, true, o.isCA ? seq(bool(true)) : seq()),
    // digitalSignature for a TLS server key; keyCertSign and cRLSign for a CA.
    extension(OID.keyUsage, true, bits(Buffer.from([o.isCA ? 0x06 : 0x80]), true)),
    extension(OID.subjectKeyId, false, octets(keyId(spki))),
    extension(OID.authorityKeyId, false, seq(tlv(0x80, authorityKeyId))),
  ];
  if (!o.isCA) {
    exts.push(extension(OID.extKeyUsage, false, seq(oid(OID.serverAuth))));
    const names = (o.hosts ?? []).map((h) => (isIP(h) ? tlv(0x87, ipBytes(h)) : tlv(0x82, Buffer.from(h, 'ascii'))));
    if (names.length > 0) exts.push(extension(OID.subjectAltName, false, seq(...names)));
  }
  const tbs = seq(explicit(0, integer(Buffer.from([2]))), integer(serial), algorithm, issuerName, seq(time(o.notBefore), time(o.notAfter)), name(o.commonName), spki, tlv(0xa3, seq(...exts)));
  const signature = sign('sha256', tbs, signer);
  const der = seq(tbs, algorithm, bits(signature));
  return { certPem: pem('CERTIFICATE', der), keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string };
}

/** The issuer's subject exactly as encoded in its certificate, so chains match byte for byte. */
function issuerNameDer(ca: X509Certificate): Buffer {
  const der = ca.raw;
  // Certificate > TBSCertificate > [version, serial, algorithm, issuer, validity, subject]
  const children = (buf: Buffer, at: number): Array<{ start: number; end: number; body: number }> => {
    const out: Array<{ start: number; end: number; body: number }> = [];
    const { body, end } = header(buf, at);
    for (let p = body; p < end; ) {
      const h = header(buf, p);
      out.push({ start: p, end: h.end, body: h.body });
      p = h.end;
    }
    return out;
  };
  const [tbs] = children(der, 0);
  const fields = children(der, (tbs as { start: number }).start);
  const subject = fields[5] as { start: number; end: number };
  return Buffer.from(der.subarray(subject.start, subject.end));
}

function header(buf: Buffer, at: number): { body: number; end: number } {
  const first = buf[at + 1] as number;
  if (first < 0x80) return { body: at + 2, end: at + 2 + first };
  const n = first & 0x7f;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + (buf[at + 2 + i] as number);
  return { body: at + 2 + n, end: at + 2 + n + len };
}

function pem(label: string, der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n').replace(/\n$/, '');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** Splits a PEM bundle into its certificates. */
export function splitPem(bundle: string): string[] {
  return bundle.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\n?/g)?.map((s) => (s.endsWith('\n') ? s : `${s}\n`)) ?? [];
}
