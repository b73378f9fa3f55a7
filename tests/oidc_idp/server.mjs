// A real OpenID Connect provider (npm oidc-provider) on loopback, for the portal's SSO tests.
// Usage: node server.mjs <port> <redirect_uri> <client_secret>; accounts (id -> claims) come as
// JSON in IDP_ACCOUNTS. Logging in uses oidc-provider's own development interaction pages.
import Provider from 'oidc-provider';

const [port, redirectUri, clientSecret] = process.argv.slice(2);
const accounts = JSON.parse(process.env.IDP_ACCOUNTS || '{}');

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: 'irsa-portal',
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
  }],
  scopes: ['openid', 'email', 'profile', 'groups'],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    profile: ['preferred_username', 'name'],
    groups: ['groups'],
  },
  async findAccount(ctx, id) {
    if (!accounts[id]) return undefined;
    return { accountId: id, async claims() { return { sub: id, ...accounts[id] }; } };
  },
  pkce: { required: () => false },
  features: { devInteractions: { enabled: true } },
});

provider.listen(Number(port), '127.0.0.1', () => { console.log(`ready on ${port}`); });
