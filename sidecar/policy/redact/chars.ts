// Character classes and code points shared by the detectors, and the spans they report.
// charCodeAt past either end is NaN, which every test below rejects: no bounds checks needed.

export const isDigit = (c: number) => c >= 48 && c <= 57;
export const isUpper = (c: number) => c >= 65 && c <= 90;
export const isLower = (c: number) => c >= 97 && c <= 122;
export const isAlnum = (c: number) => isDigit(c) || isUpper(c) || isLower(c);
export const isWord = (c: number) => isAlnum(c) || c === 95;
/** base64url, and the characters of most provider tokens. */
export const isToken = (c: number) => isWord(c) || c === 45;
export const isSpace = (c: number) => c === 32 || (c >= 9 && c <= 13);

export const SP = 32;
export const DQUOTE = 34;
export const PERCENT = 37;
export const SQUOTE = 39;
export const LPAREN = 40;
export const RPAREN = 41;
export const ASTERISK = 42;
export const PLUS = 43;
export const COMMA = 44;
export const MINUS = 45;
export const DOT = 46;
export const SLASH = 47;
export const COLON = 58;
export const LT = 60;
export const EQ = 61;
export const GT = 62;
export const BACKSLASH = 92;
export const BACKTICK = 96;
export const DOLLAR = 36;
export const BANG = 33;

/** Spans found by a detector: flat [start, end) pairs, ascending and disjoint. */
export type Spans = number[];
