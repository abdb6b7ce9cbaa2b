"""Socket helpers shared by the example servers' Python tests."""
import socket


def read_to_end(s, timeout=5.0):
    """Everything until the end of the stream (a reset counts as an end):
    (bytes, how it ended: "EOF", "reset", or "open" after timeout
    seconds)."""
    s.settimeout(timeout)
    got = b""
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return got, "EOF"
            got += d
    except ConnectionResetError:
        return got, "reset"
    except socket.timeout:
        return got, "open"
