#!/usr/bin/env python3
"""CHAP at login (RFC 7143 12.1.3), with our own initiator.

pristined runs with a configuration file: a one-way CHAP client, a
mutual CHAP client and a client without CHAP.  Checked: the right secret
logs in (MD5 and SHA-256, hex and base64, the initiator's order of
CHAP_A preference); a wrong secret, no CHAP, a skipped security stage, a
CHAP_R of the wrong length, a CHAP_R replayed from an earlier login, a
mutual challenge that reflects ours, an over-long mutual challenge and
mutual CHAP for a client without it are all refused with 0x0201 and never
attach; mutual CHAP answers are checked by the initiator; a client
without CHAP still logs in without it; no secret reaches the log.
"""
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import iscsi_initiator as I  # noqa: E402

ONE = "iqn.2024-01.test.chap:one"
MUT = "iqn.2024-01.test.chap:mutual"
PLAIN = "iqn.2024-01.test.chap:plain"
SECRETS = {"one": "one-way-secret-42", "mut": "initiator-secret-77", "tgt": "target-secret-0099",
           "disco": "discovery-secret-5150", "disco-tgt": "discovery-target-secret-8"}


BODY = """[defaults]
enroll = auto

[client one]
initiator = %s
chap-user = user-one
chap-secret = %s

[client mut]
initiator = %s
chap-user = user-mut
chap-secret = %s
mutual-user = target-name
mutual-secret = %s

[client plain]
initiator = %s
""" % (ONE, SECRETS["one"], MUT, SECRETS["mut"], SECRETS["tgt"], PLAIN)


def main():
    d = I.ConfDaemon(body=BODY, server_extra="nop-interval = 0\nlog-level = debug", mib=4,
                     writable=True)
    if not d.available():
        print("build/asan/pristined is not built")
        return 77
    check = I.Checker()
    d.start()

    def logins(name):
        return len(re.findall(r"session 0x[0-9a-f]+ logged in: initiator %s " % re.escape(name), d.log()))

    def ok(name, chap, expect_alg=None):
        s = d.session(initiator_name=name)
        s.login(chap=chap)
        problems = []
        if expect_alg is not None and s.chap_info.get("alg") != expect_alg:
            problems.append("CHAP_A %s chosen, expected %s" % (s.chap_info.get("alg"), expect_alg))
        t = s.read(0, 1)
        if bytes(t.data) != d.expected[:512]:
            problems.append("wrong data after a CHAP login")
        s.logout()
        s.close()
        return problems, s.chap_info

    def refused(name, why, **kw):
        before = logins(name)
        s = d.session(initiator_name=name)
        try:
            r = s.login(raise_on_fail=False, **kw)
        finally:
            s.close()
        problems = []
        if (r.status_class, r.status_detail) != (2, 1):
            problems.append("%s: login status 0x%02x%02x, expected 0x0201"
                            % (why, r.status_class, r.status_detail))
        time.sleep(0.1)
        if logins(name) != before:
            problems.append("%s: a session was attached" % why)
        if "authentication failed for %s" % name not in d.log():
            problems.append("%s: no 'authentication failed for %s' in the log" % (why, name))
        return problems

    one = {"user": "user-one", "secret": SECRETS["one"]}
    mut = {"user": "user-mut", "secret": SECRETS["mut"], "mutual": ("target-name", SECRETS["tgt"])}

    try:
        check.case("MD5 right secret logs in", lambda: ok(ONE, dict(one, algs="5"), 5)[0])
        check.case("SHA-256 right secret logs in", lambda: ok(ONE, dict(one, algs="7"), 7)[0])
        check.case("CHAP_A 7,5 picks SHA-256", lambda: ok(ONE, dict(one, algs="7,5"), 7)[0])
        check.case("CHAP_A 6,5,7 picks MD5 (initiator's order, 6 unknown)",
                   lambda: ok(ONE, dict(one, algs="6,5,7"), 5)[0])
        check.case("base64 response (0b) logs in", lambda: ok(ONE, dict(one, b64=True))[0])
        check.case("AuthMethod=CHAP,None offered gets CHAP", lambda: ok(ONE, dict(one, methods="CHAP,None"))[0])

        def challenges_fresh():
            seen = set()
            for alg, size in ((5, 16), (7, 32)):
                for _ in range(3):
                    info = ok(ONE, dict(one, algs=str(alg)))[1]
                    if len(info["challenge"]) != size:
                        return ["CHAP_A %d challenge of %d bytes, expected %d" % (alg, len(info["challenge"]), size)]
                    seen.add(info["challenge"])
            return [] if len(seen) == 6 else ["a challenge was reused"]
        check.case("challenges are new every login, 16/32 bytes", challenges_fresh)

        check.case("wrong secret refused", refused, ONE, "wrong secret",
                   chap=dict(one, secret="not-the-secret-1"))
        check.case("wrong secret refused (SHA-256)", refused, ONE, "wrong secret",
                   chap=dict(one, secret="not-the-secret-1", algs="7"))
        check.case("wrong CHAP_N refused", refused, ONE, "wrong name", chap=dict(one, user="user-mut"))
        check.case("AuthMethod=None refused for a CHAP client", refused, ONE, "no CHAP")
        check.case("skipping the security stage refused", refused, ONE, "stage skipped",
                   start_stage=I.OPERATIONAL)
        check.case("only CHAP_A=6 refused", refused, ONE, "no common algorithm", chap=dict(one, algs="6"))

        def set_key(key, fn):
            def tamper(keys, info):
                return [(k, fn(v, info) if k == key else v) for k, v in keys]
            return tamper
        check.case("CHAP_R one byte short refused", refused, ONE, "short CHAP_R",
                   chap=dict(one, tamper=set_key("CHAP_R", lambda v, i: v[:-2])))
        check.case("CHAP_R one byte long refused", refused, ONE, "long CHAP_R",
                   chap=dict(one, tamper=set_key("CHAP_R", lambda v, i: v + "00")))
        check.case("MD5 response under SHA-256 refused", refused, ONE, "MD5-size CHAP_R",
                   chap=dict(one, algs="7", tamper=set_key(
                       "CHAP_R", lambda v, i: "0x" + I.Session.chap_response(5, i["id"], SECRETS["one"],
                                                                             i["challenge"]).hex())))
        check.case("malformed CHAP_R refused", refused, ONE, "non-hex CHAP_R",
                   chap=dict(one, tamper=set_key("CHAP_R", lambda v, i: "0x" + "zz" * 16)))

        def replay():
            _, info = ok(ONE, dict(one))
            old = dict(info["sent"])["CHAP_R"]
            return refused(ONE, "replayed CHAP_R",
                           chap=dict(one, tamper=set_key("CHAP_R", lambda v, i: old)))
        check.case("CHAP_R replayed from an earlier login refused", replay)

        def mutual_ok():
            problems, info = ok(MUT, dict(mut))
            if not info.get("mutual_ok"):
                problems.append("the target's mutual answer was not checked")
            return problems
        check.case("mutual CHAP: target's answer is right (MD5)", mutual_ok)
        check.case("mutual CHAP: target's answer is right (SHA-256)",
                   lambda: ok(MUT, dict(mut, algs="7"), 7)[0])
        check.case("mutual CHAP: base64 challenge", lambda: ok(MUT, dict(mut, b64=True))[0])

        def wrong_mutual_secret():
            s = d.session(initiator_name=MUT)
            try:
                s.login(chap=dict(mut, mutual=("target-name", "some-other-secret")))
            except I.ISCSIError as e:
                return [] if "mutual" in str(e) else ["unexpected error %s" % e]
            finally:
                s.close()
            return ["the initiator accepted a mutual answer made with another secret"]
        check.case("initiator's mutual check can fail", wrong_mutual_secret)

        check.case("one-way client asking mutual refused", refused, ONE, "mutual not configured",
                   chap=dict(one, mutual=("target-name", SECRETS["tgt"])))
        check.case("mutual: wrong initiator secret refused", refused, MUT, "wrong secret",
                   chap=dict(mut, secret="not-the-secret-2"))
        def reflect(v, info):
            info["mutual_challenge"] = info["challenge"]
            return "0x" + info["challenge"].hex()
        check.case("mutual: reflected challenge refused", refused, MUT, "reflection",
                   chap=dict(mut, tamper=set_key("CHAP_C", reflect)))
        check.case("mutual: CHAP_C of 1025 bytes refused", refused, MUT, "long CHAP_C",
                   chap=dict(mut, mutual_challenge=b"\x5a" * 1025))
        check.case("mutual: CHAP_C of 1024 bytes accepted",
                   lambda: ok(MUT, dict(mut, mutual_challenge=b"\x5a" * 1024))[0])
        check.case("mutual: CHAP_I 256 refused", refused, MUT, "CHAP_I range",
                   chap=dict(mut, tamper=set_key("CHAP_I", lambda v, i: "256")))

        def plain():
            s = d.session(initiator_name=PLAIN)
            s.login()
            t = s.read(0, 1)
            s.logout()
            s.close()
            return [] if bytes(t.data) == d.expected[:512] else ["wrong data"]
        check.case("client without CHAP logs in with AuthMethod=None", plain)
        check.case("client without CHAP offering only CHAP refused", refused, PLAIN, "no None",
                   chap=dict(one))

        def discovery():
            s = I.Session(d.host, d.port, ONE)
            s.login(session_type="Discovery")
            s.send_targets()
            s.logout()
            s.close()
        check.case("discovery stays unauthenticated (no discovery-chap-*)", discovery)

        # ---- discovery CHAP: the same clients, [server] discovery-chap-* set ----
        problems = d.stop()
        if problems:
            check.failures.append(("daemon (first run)", problems))
        d.server_extra += ("\ndiscovery-chap-user = disco\ndiscovery-chap-secret = %s\n"
                           "discovery-mutual-user = disco-target\ndiscovery-mutual-secret = %s\n"
                           % (SECRETS["disco"], SECRETS["disco-tgt"]))
        d.start()
        disco = {"user": "disco", "secret": SECRETS["disco"]}

        def disco_ok(chap):
            s = I.Session(d.host, d.port, PLAIN)
            try:
                s.login(session_type="Discovery", chap=chap)
                if not any(v == d.target for k, v in s.send_targets()):
                    return ["SendTargets after a discovery CHAP login misses the target"]
                s.logout()
            finally:
                s.close()
            return []
        check.case("discovery with the discovery secret", disco_ok, disco)
        check.case("discovery with mutual CHAP", disco_ok,
                   dict(disco, mutual=("disco-target", SECRETS["disco-tgt"])))

        def disco_refused(chap):
            s = I.Session(d.host, d.port, ONE)
            try:
                r = s.login(session_type="Discovery", chap=chap, raise_on_fail=False)
            finally:
                s.close()
            if (r.status_class, r.status_detail) != (2, 1):
                return ["discovery answered 0x%02x%02x, expected 0x0201" % (r.status_class, r.status_detail)]
            return []
        check.case("discovery without CHAP refused", disco_refused, None)
        check.case("discovery with a client's own secret refused", disco_refused, dict(one))
        check.case("discovery with a wrong secret refused", disco_refused,
                   dict(disco, secret="not-the-disco-secret"))
        check.case("normal sessions keep their own CHAP", lambda: ok(ONE, one)[0])
        check.case("a client without CHAP still logs in without", plain)

        def no_secrets_logged():
            log = d.log()
            return ["secret %s in the log" % k for k, v in SECRETS.items() if v in log]
        check.case("no secret in the (debug) log", no_secrets_logged)
    finally:
        rc = check.finish_with(d)
    return rc


if __name__ == "__main__":
    sys.exit(main())
