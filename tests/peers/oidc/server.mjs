// A real, independent OpenID Connect server for age-oauth's tests: panva's certified oidc-provider
// on 127.0.0.1. Everything protocol-related is oidc-provider's own; ours is only the interaction
// step (the user signs in at once as OIDC_USER, consent is granted) so a test "browser" just follows redirects.
// Env: OIDC_PORT (0 = free port), OIDC_STATE_DIR (writes `issuer` there when listening),
//      OIDC_USER (default alice), OIDC_PARENT_PID (exit when that process is gone).
import http from 'node:http';
import fs from 'node:fs';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const user = process.env.OIDC_USER || 'alice';
const stateDir = process.env.OIDC_STATE_DIR || '.';
const parent = Number(process.env.OIDC_PARENT_PID || 0);

const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
const clients = [{
  client_id: 'age-oauth-cli', // public native app: PKCE required, any loopback port (RFC 8252 §7.3)
  application_type: 'native',
  token_endpoint_auth_method: 'none',
  redirect_uris: ['http://127.0.0.1/callback'],
  grant_types: ['authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:device_code'],
  response_types: ['code'],
}, {
  client_id: 'age-oauth-confidential', // the same, with a secret sent by HTTP Basic
  client_secret: 'age-oauth-test-secret',
  application_type: 'native',
  token_endpoint_auth_method: 'client_secret_basic',
  redirect_uris: ['http://127.0.0.1/callback'],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
}];

const server = http.createServer();
server.listen(Number(process.env.OIDC_PORT || 0), '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients,
    jwks: { keys: [{ ...rsa, kid: 'rsa-1', use: 'sig', alg: 'RS256' }] },
    cookies: { keys: ['age-oauth-test-cookie-key'] },
    findAccount: (_ctx, sub) => ({
      accountId: sub,
      claims: async () => ({ sub, preferred_username: sub, name: sub, email: `${sub}@example.test` }),
    }),
    claims: { openid: ['sub'], profile: ['name', 'preferred_username'], email: ['email'] },
    features: { devInteractions: { enabled: false }, deviceFlow: { enabled: true }, revocation: { enabled: true } },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
  });
  const callback = provider.callback();

  async function interaction(req, res) {
    const details = await provider.interactionDetails(req, res);
    if (details.prompt.name === 'login') {
      await provider.interactionFinished(req, res, { login: { accountId: user } }, { mergeWithLastSubmission: false });
      return;
    }
    const missing = details.prompt.details;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    const grantId = await grant.save();
    await provider.interactionFinished(req, res, { consent: { grantId } }, { mergeWithLastSubmission: true });
  }

  server.on('request', (req, res) => {
    if (!req.url.startsWith('/interaction/')) return callback(req, res);
    interaction(req, res).catch((err) => {
      if (!res.headersSent) res.writeHead(400, { 'content-type': 'text/plain' });
      res.end(`interaction error: ${err.message}`);
    });
  });
  fs.writeFileSync(`${stateDir}/issuer`, issuer);
  console.log(`oidc-provider listening: ${issuer}`);
});

// Tests cannot run code after their last test: the server leaves with the process that started it.
if (parent) {
  setInterval(() => {
    try { process.kill(parent, 0); } catch {
      if (process.env.OIDC_STATE_DIR) fs.rmSync(stateDir, { recursive: true, force: true });
      process.exit(0);
    }
  }, 500).unref();
}
