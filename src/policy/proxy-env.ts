// The proxy environment srt sets, pointing at the relays inside the sandbox.
// One definition, used by the compiler (so `cordon explain` shows it) and by
// the network session.

// Under the private /tmp: a tmpfs the launcher can make the mount point in
// (a path under the read-only host /run cannot be created). The bind is
// read-only and a mount point, so the file cannot be replaced in place.
export const LAUNCHER_IN_SANDBOX = '/tmp/.cordon/cordon-launcher';
export const HTTP_PROXY_PORT = 3128;
export const SOCKS_PROXY_PORT = 1080;

/** The proxy variables srt sets, pointing at the relays inside the sandbox. */
export function proxyEnv(http = HTTP_PROXY_PORT, socks = SOCKS_PROXY_PORT, launcher = LAUNCHER_IN_SANDBOX): Record<string, string> {
  const httpUrl = `http://localhost:${http}`;
  // Loopback only: in-sandbox servers and relayed host ports both live there.
  // srt also lists private ranges, which sends those literals around the
  // proxy into a network namespace that has no route (ENETUNREACH).
  const noProxy = 'localhost,127.0.0.1,::1';
  return {
    HTTP_PROXY: httpUrl,
    HTTPS_PROXY: httpUrl,
    http_proxy: httpUrl,
    https_proxy: httpUrl,
    ALL_PROXY: httpUrl,
    all_proxy: httpUrl,
    NO_PROXY: noProxy,
    no_proxy: noProxy,
    GRPC_PROXY: httpUrl,
    grpc_proxy: httpUrl,
    FTP_PROXY: `socks5h://localhost:${socks}`,
    ftp_proxy: `socks5h://localhost:${socks}`,
    RSYNC_PROXY: `localhost:${socks}`,
    DOCKER_HTTP_PROXY: httpUrl,
    DOCKER_HTTPS_PROXY: httpUrl,
    CLOUDSDK_PROXY_TYPE: 'http',
    CLOUDSDK_PROXY_ADDRESS: 'localhost',
    CLOUDSDK_PROXY_PORT: String(http),
    GIT_SSH_COMMAND: `ssh -o ControlMaster=no -o ControlPath=none -o ProxyCommand='${launcher} connect %h %p --proxy-port ${socks}'`,
    NODE_USE_ENV_PROXY: '1',
  };
}

