// Rails-made cookies for the cookie-auth tests, and the gocable settings
// that read them.
//
// * vector(version, name): a cookie written by real Rails (6.1, 7.0, 7.2),
//   from testdata/cookies/rails-<version>-vectors.json, with the reader's
//   secret_key_base and configuration and Rails' verdict.
// * mintWithRails(...): a fresh cookie written at test time by the Ruby
//   ActionDispatch::Cookies installed here (testdata/e2e-cookies/rails_cookie.rb),
//   e.g. one that expired an hour ago. null when Ruby or actionpack is
//   missing.
//
// Nothing here encodes a cookie. The only cookies built here are forgeries
// of Rails-made ones (bytes changed, signature kept), which must fail.
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const projectRoot = join(here, "..", "..", "..");
const vectorsDir = join(projectRoot, "testdata", "cookies");
const railsScript = join(projectRoot, "testdata", "e2e-cookies", "rails_cookie.rb");

const files = new Map();

/** The vector `name` of testdata/cookies/rails-<version>-vectors.json. */
export function vector(version, name) {
  if (!files.has(version)) {
    files.set(version, JSON.parse(readFileSync(join(vectorsDir, `rails-${version}-vectors.json`), "utf8")));
  }
  const v = files.get(version).vectors.find((x) => x.name === name);
  if (!v) throw new Error(`no vector ${name} in rails-${version}-vectors.json`);
  return { ...v, id: `rails-${version}/${name}` };
}

/** What rails_cookie.rb and the vectors call the default salts. */
const DEFAULT_SALTS = {
  signed_cookie_salt: ["--signed-cookie-salt", "signed cookie"],
  encrypted_cookie_salt: ["--encrypted-cookie-salt", "encrypted cookie"],
  encrypted_signed_cookie_salt: ["--encrypted-signed-cookie-salt", "signed encrypted cookie"],
  authenticated_encrypted_cookie_salt: ["--authenticated-encrypted-cookie-salt", "authenticated encrypted cookie"],
};

/**
 * The gocable flags for the app that wrote vector v: --load-defaults and
 * --rails-version of its Rails release, plus a flag for each setting where
 * its configuration differs from those defaults (e.g. the :json
 * cookies_serializer initializer `rails new` generated up to 6.1).
 * secret_key_base is not among them: it goes in the environment.
 */
export function railsFlags(v) {
  const [major, minor] = v.rails_version.split(".").map(Number);
  const release = `${major}.${minor}`;
  const c = v.config;
  const modern = major >= 7; // load_defaults 7.0: SHA256 key derivation, :json cookies
  const flags = ["--load-defaults", release, "--rails-version", release];
  if (c.key_generator_hash_digest !== (modern ? "SHA256" : "SHA1")) flags.push("--key-digest", c.key_generator_hash_digest.toLowerCase());
  if (c.cookies_serializer !== (modern ? "json" : "marshal")) flags.push("--cookies-serializer", c.cookies_serializer);
  if (c.use_authenticated_cookie_encryption !== true) flags.push("--authenticated-encryption=false");
  if (c.key_generator_iterations !== 1000) flags.push("--key-iterations", String(c.key_generator_iterations));
  if (c.encrypted_cookie_cipher) flags.push("--cookie-cipher", c.encrypted_cookie_cipher);
  if (c.signed_cookie_digest) flags.push("--signed-cookie-digest", c.signed_cookie_digest);
  if (c.cookies_digest) flags.push("--cookies-digest", c.cookies_digest);
  for (const [key, [flag, def]] of Object.entries(DEFAULT_SALTS)) {
    if (c.salts[key] !== def) flags.push(flag, c.salts[key]);
  }
  if (c.rotations.encrypted.length || c.rotations.signed.length) {
    throw new Error(`${v.id}: cookie rotations are not rendered as flags here`);
  }
  return flags;
}

/**
 * The user id in a Rails-made cookie's value, as Rails' verdict gives it:
 * the value itself (42 or "42"), or Devise's warden.user.user.key
 * [[id], salt] in a session.
 */
export function userIdOf(v) {
  const value = v.expected.value;
  if (v.jar === "session") return value["warden.user.user.key"][0][0];
  return value;
}

/**
 * to_gid_param of gid://app/model/id: URL-safe Base64 without padding
 * (rails/globalid, GlobalID#to_param), which ActionCable uses as the
 * connection identifier of a record. The id is escaped as URI::GID.build
 * escapes it, with Ruby's CGI.escape (lib/global_id/uri/gid.rb).
 */
export function gidParam(app, model, id) {
  return Buffer.from(`gid://${app}/${model}/${cgiEscape(String(id))}`).toString("base64url");
}

/** Ruby's CGI.escape: only A-Z a-z 0-9 - _ . ~ kept, a space as "+". */
function cgiEscape(s) {
  return encodeURIComponent(s)
    .replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`)
    .replace(/%20/g, "+");
}

function runRails(args, secretKeyBase) {
  const r = spawnSync("ruby", [railsScript, ...args], {
    encoding: "utf8",
    env: { ...process.env, SECRET_KEY_BASE: secretKeyBase ?? "" },
    timeout: 20000,
  });
  if (r.error || r.status !== 0) return { error: r.error?.message ?? `exit ${r.status}: ${r.stderr.trim()}` };
  return { stdout: r.stdout };
}

let railsInfo;
/** {actionpack, globalid} of the local Ruby, or {error} when it cannot run rails_cookie.rb. */
export function railsAvailable() {
  if (!railsInfo) {
    const r = runRails(["version"]);
    railsInfo = r.error ? { error: r.error } : JSON.parse(r.stdout);
  }
  return railsInfo;
}

/**
 * A cookie that the local Rails (ActionDispatch::Cookies) writes now with
 * secretKeyBase: jar "encrypted" or "signed", expiring expiresIn seconds
 * from now (negative: in the past; "none": no expiry). Shaped like a vector,
 * with expected = what Rails itself reads back from it.
 */
export function mintWithRails({ secretKeyBase, jar, name, value, expiresIn }) {
  const r = runRails(["mint", jar, name, JSON.stringify(value), String(expiresIn)], secretKeyBase);
  if (r.error) throw new Error(`rails_cookie.rb mint: ${r.error}`);
  const v = JSON.parse(r.stdout);
  return { ...v, secret_key_base: secretKeyBase, id: `rails-${v.rails_version} (fresh)/${v.name}` };
}

/** GlobalID's own to_param for gid://app/model/id, from the local Ruby. */
export function gidParamFromRuby(app, model, id) {
  const r = runRails(["gid", app, model, String(id)]);
  if (r.error) throw new Error(`rails_cookie.rb gid: ${r.error}`);
  return r.stdout.trim();
}

/**
 * The cookie header value with one byte of its first part (the AES-GCM
 * ciphertext, or the signed payload) changed, everything else (iv, tag,
 * HMAC) kept: what an attacker who edits a cookie sends.
 */
export function flipCiphertextByte(headerValue) {
  const parts = decodeURIComponent(headerValue).split("--");
  const bytes = Buffer.from(parts[0], "base64");
  bytes[Math.floor(bytes.length / 2)] ^= 0x01;
  parts[0] = bytes.toString("base64");
  return encodeURIComponent(parts.join("--"));
}

/**
 * A signed cookie (Rails' metadata envelope, base64 + "--" + HMAC) whose
 * payload is rewritten to say `newValue`, keeping Rails' HMAC: the classic
 * "change my user_id to 1" forgery of a cookie that is only signed.
 */
export function forgeSignedValue(headerValue, newValue) {
  const [data, digest] = decodeURIComponent(headerValue).split("--");
  const envelope = JSON.parse(Buffer.from(data, "base64").toString("utf8"));
  envelope._rails.message = Buffer.from(JSON.stringify(newValue)).toString("base64");
  const forged = Buffer.from(JSON.stringify(envelope)).toString("base64");
  return encodeURIComponent(`${forged}--${digest}`);
}
