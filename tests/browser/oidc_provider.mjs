/*
 * oidc_provider.mjs: a real OpenID provider for ferry's single sign-on
 * tests, the npm package oidc-provider (an OpenID-certified
 * implementation) with its development login pages.
 *
 *   node oidc_provider.mjs CONFIG.json
 *
 * CONFIG: {port, client_id, client_secret, redirect_uri, keys_dir,
 *          kids: ["k1", ...], users: {"alice": {"groups": [...], "name": ...}}}
 * For each kid, keys_dir/<kid>.pem is the RSA private key (created when it
 * is missing), so a test can sign tokens with the provider's own key and a
 * restart with other kids is a key rotation. The first kid signs. Any
 * password is accepted for a configured user (the development login page);
 * unknown users are refused.
 *
 * Prints "ready <issuer>" once listening, and "jwks" on every JWKS fetch
 * (tests count them). Exits when stdin closes (the test ended).
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Provider from 'oidc-provider';

const cfg = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const issuer = `http://127.0.0.1:${cfg.port}`;

const keys = cfg.kids.map((kid) => {
  const file = path.join(cfg.keys_dir, `${kid}.pem`);
  if (!fs.existsSync(file)) {
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    fs.writeFileSync(file, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  }
  const jwk = crypto.createPrivateKey(fs.readFileSync(file)).export({ format: 'jwk' });
  return { ...jwk, kid, alg: 'RS256', use: 'sig' };
});

const provider = new Provider(issuer, {
  clients: [{
    client_id: cfg.client_id,
    client_secret: cfg.client_secret,
    redirect_uris: [cfg.redirect_uri],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  jwks: { keys },
  claims: { openid: ['sub'], profile: ['name'], email: ['email'], groups: ['groups'] },
  scopes: ['openid', 'profile', 'email', 'groups'],
  /* Put the requested claims (groups) into the ID token itself. */
  conformIdTokenClaims: false,
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: [crypto.randomBytes(16).toString('hex')] },
  async findAccount(ctx, id) {
    const u = cfg.users[id];
    if (!u) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...u }; } };
  },
});
provider.proxy = false;
provider.use(async (ctx, next) => {
  if (ctx.path === '/jwks') console.log('jwks');
  await next();
});
const server = provider.listen(cfg.port, '127.0.0.1', () => console.log(`ready ${issuer}`));
process.stdin.on('end', () => server.close(() => process.exit(0)));
process.stdin.resume();
