# Goal of this test: a config error that quotes the file's content (a UTF-8 byte order mark, a C1 control, a bidirectional override) prints those bytes escaped as \xNN, never raw, and names the byte order mark.
import os
import tempfile
import unicodedata

from harness import ServerTest, run_cli


def raw_invisible(text):
    """Characters a terminal would hide or act on (Unicode categories Cc and Cf), but the
    newline that ends each line."""
    return [hex(ord(ch)) for ch in text if ch != "\n" and unicodedata.category(ch) in ("Cc", "Cf")]


class ConfigEscapeTest(ServerTest):
    def check_file(self, content, want):
        with tempfile.NamedTemporaryFile("wb", suffix=".conf", delete=False) as f:
            f.write(content)
        self.addCleanup(os.unlink, f.name)
        p = run_cli(["--check-config", "-c", f.name])
        print(f"{content!r}: exit {p.returncode}: {p.stderr.strip()!r}")
        self.assertIsNone(p.sanitizer, p.stderr)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertEqual(raw_invisible(p.stderr), [], f"raw bytes in {p.stderr!r}")
        self.assertIn(f"{f.name}:1: {want}", p.stderr)

    def test_byte_order_mark(self):
        self.check_file(b"\xef\xbb\xbflisten = 127.0.0.1:0\n",
                        "\\xEF\\xBB\\xBFlisten: unknown key (the file starts with a UTF-8 "
                        "byte order mark: save it without one)")

    def test_c1_control_in_value(self):
        self.check_file(b"mode = cor\xc2\x9b31mrect\n",
                        'mode: "cor\\xC2\\x9B31mrect" is not one of correct, leaky')

    def test_bidi_override_in_key(self):
        self.check_file(b"log\xe2\x80\xaelevel = info\n", "log\\xE2\\x80\\xAElevel: unknown key")

    def test_set_argument_escaped_too(self):
        p = run_cli(["--check-config", "--set", "workers=2\u202e"])
        print(f"--set workers=2<U+202E>: exit {p.returncode}: {p.stderr.strip()!r}")
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertEqual(raw_invisible(p.stderr), [], f"raw bytes in {p.stderr!r}")
        self.assertIn('--set:1: workers: trailing junk "\\xE2\\x80\\xAE" after the number',
                      p.stderr)
