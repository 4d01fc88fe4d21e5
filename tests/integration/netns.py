"""Private network namespaces for tests that need a peer to die (root only).

A Pair is two namespaces joined by a veth pair: the server side and the client side, with
addresses 10.X.Y.1 and 10.X.Y.2 on a /30 chosen from the pid, so parallel runs do not
collide. Names start with "td" and carry the pid. Everything is deleted by cleanup(),
which new_pair() registers with addCleanup() before anything can fail, and which checks
that the names are gone; deleting a namespace also removes its veth end, its nftables
rules and the sockets left in it.

Sockets are created inside a namespace with setns() on the calling thread (ctypes): a
socket stays in the namespace it was created in after the thread switches back."""
import contextlib
import ctypes
import os
import subprocess
import unittest

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)
_counter = 0


def require_root(test):
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root (CAP_NET_ADMIN) for network namespaces")
    for tool in ("ip", "nft"):
        if subprocess.run(["which", tool], capture_output=True).returncode != 0:
            raise unittest.SkipTest(f"needs the {tool} command")


def run(*cmd, check=True):
    p = subprocess.run(list(cmd), capture_output=True, text=True)
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)}: {p.stderr.strip()}")
    return p.stdout


@contextlib.contextmanager
def inside(ns):
    """Runs the block with this thread in namespace `ns` (sockets made here stay there)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns}")
        try:
            yield
        finally:
            if _libc.setns(own, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(own)
        os.close(target)


class Pair:
    def __init__(self):
        global _counter
        _counter += 1
        tag = f"{os.getpid() % 100000}{_counter}"
        self.srv_ns, self.cli_ns = f"td{tag}s", f"td{tag}c"
        n = (os.getpid() * 7 + _counter) % (250 * 60)
        self.srv_ip = f"10.{200 + n // 3000}.{(n // 12) % 250}.{(n % 12) * 4 + 1}"
        self.cli_ip = self.srv_ip.rsplit(".", 1)[0] + "." + str(int(self.srv_ip.rsplit(".", 1)[1]) + 1)
        self.created = []

    def setup(self, sysctls=None):
        for ns in (self.srv_ns, self.cli_ns):
            run("ip", "netns", "add", ns)
            self.created.append(ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        run("ip", "link", "add", "tdv" + self.srv_ns[2:], "netns", self.srv_ns, "type", "veth",
            "peer", "name", "tdv" + self.cli_ns[2:], "netns", self.cli_ns)
        for ns, dev, ip in ((self.srv_ns, "tdv" + self.srv_ns[2:], self.srv_ip),
                            (self.cli_ns, "tdv" + self.cli_ns[2:], self.cli_ip)):
            run("ip", "-n", ns, "addr", "add", f"{ip}/30", "dev", dev)
            run("ip", "-n", ns, "link", "set", dev, "up")
        for ns in (self.srv_ns, self.cli_ns):
            for key, value in (sysctls or {}).items():
                run("ip", "netns", "exec", ns, "sysctl", "-q", "-w", f"{key}={value}")
        return self

    def cleanup(self):
        deleted, self.created = self.created, []
        for ns in deleted:
            run("ip", "netns", "del", ns, check=False)
        left = run("ip", "netns", "list", check=False).split()
        for ns in deleted:
            if ns in left:
                raise AssertionError(f"namespace {ns} was not deleted")

    def exec_prefix(self, side="srv"):
        return ["ip", "netns", "exec", self.srv_ns if side == "srv" else self.cli_ns]

    def vanish_client(self, direction="both"):
        """The client host stops answering: every packet in (and out) of its namespace is
        dropped, as if it lost power or its cable."""
        hooks = {"both": ("input", "output"), "input": ("input",), "output": ("output",)}
        for hook in hooks[direction]:
            run("ip", "netns", "exec", self.cli_ns, "nft", "add", "table", "inet", f"td{hook}")
            run("ip", "netns", "exec", self.cli_ns, "nft", "add", "chain", "inet", f"td{hook}",
                "c", f"{{ type filter hook {hook} priority 0; policy drop; }}")


def new_pair(test, sysctls=None):
    """A Pair, set up, whose cleanup is registered with the test before anything can fail."""
    pair = Pair()
    test.addCleanup(pair.cleanup)
    return pair.setup(sysctls)


def nstat(ns, *names):
    """TcpExt / Tcp counters of a namespace, from its /proc/net/netstat and snmp."""
    values = {}
    for path in ("/proc/net/netstat", "/proc/net/snmp"):
        lines = run("ip", "netns", "exec", ns, "cat", path).splitlines()
        for head, vals in zip(lines[::2], lines[1::2]):
            prefix = head.split(":", 1)[0]
            for k, v in zip(head.split()[1:], vals.split()[1:]):
                values[f"{prefix}{k}"] = int(v)
    return {n: values.get(n, 0) for n in names}


def ss_count(ns, port, state, side="sport"):
    out = run("ip", "netns", "exec", ns, "ss", "-tanH", "state", state, f"( {side} = :{port} )")
    return len([line for line in out.splitlines() if line.strip()])


class Star:
    """A server namespace and n client namespaces ("hosts"), each client joined to the
    server by a veth pair of its own /30: clients[i] = (namespace, its address). The
    server's namespace has one address all of them reach (srv_ip, on its loopback, routed
    through each veth), so every host names the server alike. Deleted by cleanup(),
    registered by new_star()."""

    def __init__(self, n):
        global _counter
        _counter += 1
        tag = f"{os.getpid() % 100000}{_counter}"
        self.srv_ns = f"td{tag}s"
        self.names = [f"td{tag}h{i}" for i in range(n)]
        base = (os.getpid() * 7 + _counter * 13) % 240
        self.subnets = [f"10.{190 + i}.{base}" for i in range(n)]
        self.srv_ips = [f"{s}.1" for s in self.subnets]
        self.clients = [(ns, f"{s}.2") for ns, s in zip(self.names, self.subnets)]
        self.srv_ip = f"10.189.{base}.1"
        self.created = []

    def setup(self):
        for ns in [self.srv_ns] + self.names:
            run("ip", "netns", "add", ns)
            self.created.append(ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        for i, (ns, ip) in enumerate(self.clients):
            srv_dev, cli_dev = f"tds{ns[2:]}"[:15], f"tdc{ns[2:]}"[:15]
            run("ip", "link", "add", srv_dev, "netns", self.srv_ns, "type", "veth", "peer",
                "name", cli_dev, "netns", ns)
            for where, dev, addr in ((self.srv_ns, srv_dev, self.srv_ips[i]), (ns, cli_dev, ip)):
                run("ip", "-n", where, "addr", "add", f"{addr}/30", "dev", dev)
                run("ip", "-n", where, "link", "set", dev, "up")
            run("ip", "-n", ns, "route", "add", f"{self.srv_ip}/32", "via", self.srv_ips[i])
        run("ip", "-n", self.srv_ns, "addr", "add", f"{self.srv_ip}/32", "dev", "lo")
        return self

    cleanup = Pair.cleanup

    def exec_prefix(self, side="srv"):
        return ["ip", "netns", "exec", self.srv_ns if side == "srv" else self.names[side]]


def new_star(test, n):
    star = Star(n)
    test.addCleanup(star.cleanup)
    return star.setup()
