// Finds personal data and secrets in the text of a request body and replaces each with a typed
// placeholder (or only counts them, so the call can be refused). It runs on every call of every
// app, so every rule is a hand-written scan or a regex anchored by a one-character lookbehind: the
// work is linear in the text, with no backtracking that a hostile body could make quadratic.
//
// One pass runs the detectors from the most to the least specific (private key, JWT, secret,
// email, IBAN, card, phone). What a detector claims is hidden from the later ones (overwritten
// with NULs, which every rule treats as a boundary, as it does a placeholder's brackets), so a
// key or a token is never half-eaten by the phone rule. Fixed formats (keys, JWTs, provider
// tokens, addresses, IBANs, cards) are detected even when the route does not redact them, only to
// shield them: a route that redacts phones must not turn the digits of an IBAN into [PHONE].
//
// What is caught, and what is knowingly not:
// - email: ASCII domain with an alphabetic (or xn--) TLD; the local part may hold Latin, Greek and
//   Cyrillic letters. Not: quoted local parts, IP-literal domains, Unicode TLDs.
// - phone: `+` numbers (7-15 digits, separators optional) and national numbers written with
//   separators (space, '-', '.', one parenthesised area code). Not: unseparated national numbers
//   (indistinguishable from ids), 7-8 digit numbers in two groups (`555-1234`), a number that
//   touches other digits across a space so the run exceeds 15 digits, 3-3-3 groups (read as
//   thousands: `612 345 678`). Skipped as not phones: ISO/European dates, year lists, thousands,
//   decimals, IPv4 addresses, versions, numbers glued to letters, times, `,` or `%`.
// - credit_card: 13-19 digits starting 2-6 (Visa, Mastercard, Amex, Discover, JCB, Diners,
//   UnionPay, Maestro), contiguous or in groups (4, then 4-6, last 1-6) split by one space or '-',
//   with a valid Luhn digit. Airline/fuel/telecom numbers (1, 7, 8, 9) and ids such as
//   millisecond timestamps or snowflakes are left; about 1 in 10 other such numbers pass Luhn.
// - iban: upper-case, compact or in groups of 4, with the registry length for its country and a
//   mod-97 remainder of 1. Not: lower-case or dash-separated IBANs.
// - secret: provider tokens by their documented prefixes and lengths; `Bearer`/`Basic`
//   credentials of 16+ characters mixing letter cases or digits; passwords in `scheme://user:pw@`;
//   values assigned to keys ending in password/passwd/passphrase/secret/secret_key/api_key/
//   access_key/private_key/token/credential(s) (or `_pass`, `_pwd`): quoted values always;
//   unquoted ones after a tight `=` (env files, query strings); after `:` or a spaced `=` only
//   values of 6+ characters holding a digit or a symbol, which keeps `password: string`,
//   `token = getToken()` and prose out but misses `password: letmein`. References (`$VAR`,
//   `%s`, `***`, `{{x}}`, `<x>`) and true/false/null are left. These guesses run only when the
//   route redacts secrets. Not: credentials named otherwise (`pin=`, `key=`), unknown providers.
// - jwt: header.payload[.signature] (and 5-part JWE) whose header decodes to a JSON object with a
//   string `alg`. Not: a header whose JSON starts with whitespace (its base64 does not start
//   with 'e', which is how candidates are picked).
// - private_key: a PEM `-----BEGIN ... PRIVATE KEY-----` block through its END line; without an
//   END line, through the base64 and header lines that follow it.
//
// The code is in ./redact/: kinds.ts (kinds, placeholders, findings), chars.ts (character
// classes), a file per detector (chain.ts holds the digit groups that card.ts and phone.ts
// judge), redactor.ts (the passes) and walk.ts (the texts of request bodies).
export type { RedactionKind, Findings, Redactor } from './redact/kinds.ts';
export { placeholder, mergeFindings } from './redact/kinds.ts';
export { createRedactor } from './redact/redactor.ts';
export type { TextEndpoint } from './redact/walk.ts';
export { mapTexts, redactBody } from './redact/walk.ts';
