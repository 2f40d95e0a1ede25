// One OpenID provider for the tests, on 127.0.0.1 over plain HTTP, or over
// HTTPS with a test CA's certificate (the tests allow that address in
// tenant-plane's settings).
//
//   node provider.mjs CONFIG.json
//
// CONFIG: { "port": 0, "keys": "keys.json", "clients": [...], "accounts": {...}, "tls"? }
// - keys: a file of private JWKs; made with one new RS256 key when missing,
//   so deleting it and starting again rotates the provider's key.
// - clients: { client_id, client_secret, redirect_uris?, claims? }. A
//   client with `claims` gets JWT access tokens for the client-credentials
//   grant carrying them: how a test stands in for one user of its own.
// - accounts: { id: claims } for the browser sign-in (the provider's own
//   development login form takes any id listed here).
// Prints `listening <port>` once it serves.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const config = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));

function keys() {
  if (fs.existsSync(config.keys)) return JSON.parse(fs.readFileSync(config.keys, 'utf8'));
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const jwk = privateKey.export({ format: 'jwk' });
  jwk.kid = crypto.randomBytes(8).toString('hex');
  jwk.alg = 'RS256';
  jwk.use = 'sig';
  const set = { keys: [jwk] };
  fs.writeFileSync(config.keys, JSON.stringify(set));
  return set;
}

// With `tls` ({ cert, key }: PEM files), over HTTPS.
const server = config.tls
  ? https.createServer({ cert: fs.readFileSync(config.tls.cert), key: fs.readFileSync(config.tls.key) })
  : http.createServer();
await new Promise((resolve) => server.listen(config.port ?? 0, '127.0.0.1', resolve));
const port = server.address().port;
const issuer = `${config.tls ? 'https' : 'http'}://127.0.0.1:${port}`;
const accounts = config.accounts ?? {};
const clients = config.clients ?? [];
const byClient = Object.fromEntries(clients.map((c) => [c.client_id, c.claims]));

const provider = new Provider(issuer, {
  jwks: keys(),
  clients: clients.map((c) => ({
    client_id: c.client_id,
    client_secret: c.client_secret,
    redirect_uris: c.redirect_uris ?? [],
    response_types: c.redirect_uris ? ['code'] : [],
    grant_types: c.redirect_uris ? ['authorization_code'] : ['client_credentials'],
    id_token_signed_response_alg: 'RS256',
  })),
  features: {
    clientCredentials: { enabled: true },
    devInteractions: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => 'urn:tenant-plane',
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: 'api',
        audience: 'tenant-plane',
        accessTokenFormat: 'jwt',
        jwt: { sign: { alg: 'RS256' } },
      }),
    },
  },
  scopes: ['openid', 'profile', 'email', 'api'],
  claims: { openid: ['sub'], profile: ['preferred_username', 'groups'], email: ['email'] },
  // The ID token carries the granted scopes' claims (the console reads it).
  conformIdTokenClaims: false,
  async extraTokenClaims(ctx, token) {
    return token.kind === 'ClientCredentials' ? byClient[token.clientId] : undefined;
  },
  async findAccount(ctx, id) {
    if (!accounts[id]) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...accounts[id] }) };
  },
  pkce: { required: () => true },
  ttl: { AccessToken: 3600, ClientCredentials: 3600, IdToken: 3600 },
});
// How many times the JWKS was fetched: `GET /test/jwks-fetches`.
let jwksFetches = 0;
const callback = provider.callback();
server.on('request', (req, res) => {
  if (req.url === '/test/jwks-fetches') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ fetches: jwksFetches }));
    return;
  }
  if (req.url.startsWith('/jwks')) jwksFetches += 1;
  callback(req, res);
});
process.on('SIGTERM', () => process.exit(0));
console.log(`listening ${port}`);
