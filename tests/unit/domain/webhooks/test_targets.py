"""SSRF guard for webhook targets (loyalty.domain.webhooks.targets); DNS is a fake resolver, no sockets."""

from __future__ import annotations

import pytest

from loyalty.domain.webhooks.targets import UnsafeTarget, check_target


def resolver(*addresses: str):
    def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


@pytest.mark.parametrize(
    "url",
    [
        "http://hooks.example.com/in",  # plain http outside the local stack
        "ftp://hooks.example.com/in",
        "https:///nohost",
        "https://user:pw@hooks.example.com/",
        "https://127.0.0.1/in",
        "https://10.1.2.3/in",
        "https://192.168.0.10/in",
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/",
        "https://[::1]/",
        "https://[::ffff:127.0.0.1]/",
        "https://0.0.0.0/",
        "https://224.0.0.1/",
        "https://100.64.0.1/",
    ],
)
def test_refused_targets_name_the_url_field(url: str) -> None:
    # Given a URL that is not https or points at a non-public address
    # When it is checked outside the local stack
    with pytest.raises(UnsafeTarget) as refused:
        check_target(url, resolve=resolver("93.184.216.34"))
    # Then the 422 names `url`
    assert refused.value.details["fields"][0]["field"] == "url"


@pytest.mark.parametrize(
    "answers",
    [("10.0.0.5",), ("93.184.216.34", "127.0.0.1"), ("169.254.169.254",), ("fd00:ec2::254",)],
)
def test_hostnames_resolving_to_any_private_address_are_refused(answers: tuple[str, ...]) -> None:
    # Given a public-looking name whose DNS answers include a private or metadata address
    # When it is checked / Then it is refused
    with pytest.raises(UnsafeTarget):
        check_target("https://hooks.example.com/in", resolve=resolver(*answers))


def test_public_https_target_is_accepted_with_its_checked_addresses() -> None:
    # Given a public https URL / When checked
    target = check_target("https://hooks.example.com:8443/in?x=1", resolve=resolver("93.184.216.34"))
    # Then delivery will connect to the checked address, keeping the host name for TLS
    assert (target.scheme, target.host, target.port, target.path) == (
        "https",
        "hooks.example.com",
        8443,
        "/in?x=1",
    )
    assert target.addresses == ("93.184.216.34",)


def test_local_stack_allows_http_and_loopback_but_never_metadata() -> None:
    # Given the local stack / When loopback over http and the metadata address are checked
    target = check_target("http://127.0.0.1:9000/hook", local_stack=True)
    # Then loopback passes and the metadata address is still refused
    assert target.addresses == ("127.0.0.1",)
    with pytest.raises(UnsafeTarget):
        check_target("http://169.254.169.254/", local_stack=True)
    with pytest.raises(UnsafeTarget):
        check_target("http://10.0.0.1/", local_stack=True)


def test_unresolvable_host_is_refused() -> None:
    def fail(host: str, port: int) -> list[str]:
        raise OSError("no such host")

    # Given a host DNS does not know / When checked / Then refused, not a 500
    with pytest.raises(UnsafeTarget):
        check_target("https://nowhere.invalid/", resolve=fail)


@pytest.mark.parametrize(
    ("url", "host", "path"),
    [
        ("https://hooks.example.com/in box?q=a b", "hooks.example.com", "/in%20box?q=a%20b"),
        ("https://hooks.example.com/caf%C3%A9/é", "hooks.example.com", "/caf%C3%A9/%C3%A9"),
        ("https://bücher.example/in", "xn--bcher-kva.example", "/in"),
    ],
)
def test_the_request_line_and_host_are_plain_ascii(url: str, host: str, path: str) -> None:
    # When a target with spaces, non-ASCII or an international host name is checked
    target = check_target(url, resolve=resolver("93.184.216.34"))
    # Then its host is punycode and its path escaped (escapes already there are kept)
    assert (target.host, target.path) == (host, path)
