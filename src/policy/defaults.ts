// Built-in lists of the default policy. They are applied under every
// settings file (not only when there is none): a setting re-opens one by
// naming it (or a path inside it) in allowRead or allowWrite.

/** Credential stores under $HOME, hidden from reads. */
export const HOME_CREDENTIAL_STORES = [
  '.ssh',
  '.aws',
  '.gnupg',
  '.config/gcloud',
  '.docker/config.json',
  '.netrc',
  '.git-credentials',
  '.npmrc',
  '.pypirc',
  '.kube',
  '.azure',
  '.config/gh',
  '.config/hub',
  '.password-store',
  '.vault-token',
  '.pgpass',
  '.my.cnf',
  '.cargo/credentials',
  '.cargo/credentials.toml',
  '.gem/credentials',
  '.terraform.d/credentials.tfrc.json',
  '.local/share/keyrings',
  '.config/op',
  '.mozilla',
  '.config/google-chrome',
  '.config/chromium',
];

/** Paths under $HOME that the host later runs or trusts — at login, in the
 *  desktop session, from PATH, or as a tool's configuration that can name a
 *  program (git's core.fsmonitor, cargo's runner). Write-protected whenever
 *  $HOME is writable (catalog H1); they stay readable. */
export const HOME_HOST_EXECUTED = [
  '.local/bin',
  '.pam_environment',
  '.xprofile',
  '.xsession',
  '.xsessionrc',
  '.xinitrc',
  '.config/autostart',
  '.config/systemd/user',
  '.config/environment.d',
  '.config/git',
  '.config/fish/config.fish',
  '.cargo/config',
  '.cargo/config.toml',
  '.cargo/bin',
  '.bun/bin',
  '.deno/bin',
  '.vimrc',
  '.config/nvim',
  '.tmux.conf',
  '.inputrc',
];

/** Host-wide secrets that uid 0 inside the sandbox could otherwise read when
 *  cordon itself runs as root. */
export const SYSTEM_SECRETS = ['/etc/shadow', '/etc/shadow-', '/etc/gshadow', '/etc/gshadow-', '/etc/security/opasswd', '/etc/sudoers.d'];

/** Directories holding host Unix sockets (catalog U1/U5). Seccomp refuses
 *  AF_UNIX anyway; hiding them is the second wall, and it keeps them hidden
 *  from a command allowed a few named sockets. */
export function hostSocketPaths(uid: number, env: Record<string, string | undefined>): string[] {
  const out = [
    `/run/user/${uid}`,
    '/run/docker.sock',
    '/var/run/docker.sock',
    '/run/containerd',
    '/run/podman',
    '/run/dbus',
    '/run/systemd/private',
    '/run/systemd/journal',
    '/run/systemd/resolve/io.systemd.Resolve',
    '/run/nscd',
    '/run/snapd.socket',
    '/run/snapd-snap.socket',
    '/run/libvirt',
    '/run/lxd-installer.socket',
    '/var/lib/lxd/unix.socket',
  ];
  const xdg = env.XDG_RUNTIME_DIR;
  // Only where runtime dirs live: a misset XDG_RUNTIME_DIR=$HOME must not hide $HOME.
  if (xdg && /^\/(run|var\/run|tmp)\/./.test(xdg)) out.push(xdg);
  const agent = env.SSH_AUTH_SOCK;
  if (agent && agent.startsWith('/')) {
    // The socket, and its directory only when that is the agent's own
    // (`/tmp/ssh-XXXX/agent.N`): a socket in $HOME must not hide all of $HOME.
    out.push(agent);
    const dir = agent.slice(0, agent.lastIndexOf('/'));
    if (/\/ssh-[^/]+$/.test(dir)) out.push(dir);
  }
  return out;
}

/** System directories a program needs to start: the root of a
 *  defaultDenyRead sandbox is built from these (plus writable and allowRead
 *  paths). Missing ones are skipped; top-level symlinks (merged /usr) are
 *  recreated as symlinks. */
export const SYSTEM_READ_ALLOWLIST = [
  '/usr',
  '/bin',
  '/sbin',
  '/lib',
  '/lib32',
  '/lib64',
  '/libx32',
  '/etc',
  '/opt',
  '/nix',
  '/gnu',
  '/run/current-system',
  '/var/lib/dpkg/alternatives',
];

/** Environment variables never passed in (credentials), matched on the
 *  upper-cased name. env.allow re-admits one. */
export const ENV_DENY_PATTERNS: RegExp[] = [
  // Whole words only: TOKENIZERS_PARALLELISM or SECRETARY_NAME are not secrets.
  /(^|_)(ACCESS_|AUTH_|REFRESH_|ID_|SESSION_)?TOKENS?($|_)/,
  /(^|_)SECRETS?($|_)/,
  /PASSWORD/,
  /PASSWD/,
  /PASSPHRASE/,
  /API_?KEY/,
  /ACCESS_?KEY/,
  /PRIVATE_?KEY/,
  /CREDENTIAL/,
  /(^|_)AUTH($|_)/,
  /_KEY$/,
  /^(DATABASE|REDIS|MONGO(DB)?)_URL$/,
  /^SSH_AUTH_SOCK$/,
  /^SSH_AGENT_PID$/,
  /^GPG_AGENT_INFO$/,
  /^DBUS_SESSION_BUS_ADDRESS$/,
  /^XAUTHORITY$/,
  /^KUBECONFIG$/,
  /^VAULT_/,
  /^GOOGLE_APPLICATION_CREDENTIALS$/,
  /^CORDON_RELAY/,
];

/** Proxy variables of the host: removed, because they can carry
 *  user:password in the URL and point at proxies the sandbox cannot reach;
 *  the network layer sets its own in proxy mode. */
export const HOST_PROXY_VARS = [
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'ALL_PROXY',
  'NO_PROXY',
  'FTP_PROXY',
  'RSYNC_PROXY',
  'GRPC_PROXY',
  'DOCKER_HTTP_PROXY',
  'DOCKER_HTTPS_PROXY',
];
