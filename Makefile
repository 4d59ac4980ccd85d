# itlsim — the two commands for a fresh machine are `make demo` and `make test` (see README.md).
# Everything is built from Cargo.lock; nothing is installed by hand.

CARGO ?= cargo
BIN   := target/debug/itlsim
TD    := wire/testdata

.PHONY: all build deps deps-bench bench-net test lint fmt demo demo-files bench bench-sim fuzz-smoke certs guard clean

all: build

build:
	$(CARGO) build --workspace --locked

## Clients the real-client tests use (tests/real_clients.rs), from Debian's packages.
deps:
	@missing=""; for t in curl openssl tftp; do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing the test clients:$$missing"; \
		(apt-get install -y curl openssl tftp-hpa >/dev/null 2>&1 || \
		 (apt-get update >/dev/null && apt-get install -y curl openssl tftp-hpa >/dev/null)); \
	fi

## tftpd-hpa for the TFTP benchmark baseline (bench-net).
deps-bench: deps
	@[ -x /usr/sbin/in.tftpd ] || (apt-get install -y tftpd-hpa >/dev/null 2>&1 || \
		(apt-get update >/dev/null && apt-get install -y tftpd-hpa >/dev/null))

## Servers on loopback: TVS handshakes/verifies vs raw rustls and RSA signs; TFTP vs tftpd-hpa.
bench-net: deps-bench
	$(CARGO) bench --locked -p itlsim-net --bench net


## The test suite: unit, conformance (golden vectors), robustness, CLI end-to-end, scenarios,
## real clients against `itlsim serve`.
test: deps

	$(CARGO) test --workspace --locked

## fmt --check + clippy -D warnings on every target, and the private-key guard.
lint: guard
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

## Private keys may only be committed as TEST-ONLY fixtures under wire/testdata/ and certs/.
guard:
	@bad=$$(git ls-files | grep -vE '^(wire/testdata|certs)/' | xargs grep -lI 'BEGIN .*PRIVATE KEY' 2>/dev/null | grep -v '^Makefile$$' || true); \
	if [ -n "$$bad" ]; then echo "private keys outside the test fixtures: $$bad"; exit 1; fi

## The main job on the embedded default: a maintenance procedure (TFTP/CallManager certificates
## regenerated, then TVS before the reset wave finished) replayed against 2,000 phones of a
## 2-node 11.5 cluster, every lock explained. Reports land in out/demo/.
DEMO ?= scenarios/regen-tftp-before-tvs.yaml
demo: build
	$(BIN) run $(DEMO) --out out/demo
	@echo
	@echo "== why did the first phone lock? (itlsim explain) =="
	$(BIN) explain --out out/demo SEP001122000000
	@echo
	@echo "Reports: out/demo/report.html (open in a browser), timeline.svg, summary.json, phones.ndjson, junit.xml"

## The inspect commands on the bundled conformance vectors.
demo-files: build
	@echo "== itlsim itl show (a reference-built ITL: signer, records, signature) =="
	$(BIN) itl show $(TD)/tlv/ITLFile_sha1.tlv
	@echo
	@echo "== the same ITL with one byte changed: exit code 1 =="
	-$(BIN) itl show $(TD)/tlv/neg_ITLFile_tampered.tlv | grep 'Signature Status'
	@echo
	@echo "== a signed config checked against the ITL a phone holds (TFTP/CCM+TFTP record) =="
	$(BIN) sgn verify --itl $(TD)/tlv/ITLFile_sha1.tlv $(TD)/sgn/sha512/SEP001122334455.cnf.xml.sgn
	@echo
	@echo "== the same config against an ITL that does not carry its signer: exit code 1 =="
	-$(BIN) sgn verify --itl $(TD)/tlv/ITLFile_sast_only.tlv $(TD)/sgn/sha1/SEP001122334455.cnf.xml.sgn | grep 'Signature Status'
	@echo
	@echo "== a captured TVS verify exchange =="
	$(BIN) tvs decode $(TD)/tvs/conn1.request.bin
	$(BIN) tvs decode $(TD)/tvs/conn1.response.bin

## Benchmarks that print same-run ratios (release build).
bench:
	$(CARGO) bench --locked -p itlsim-wire --bench parse_verify

## The scenario driver at scale (ITLSIM_BENCH_PHONES, default 100000; slow: per-phone config signing).
bench-sim:
	$(CARGO) bench --locked -p itlsim-sim --bench sim


## 30 s per cargo-fuzz target (installs cargo-fuzz on first use; stable, no sanitizer).
fuzz-smoke:
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	cd fuzz && ./seed.sh
	cd fuzz && for t in tlv sgn enc_sgn tvs_frame; do \
		$(CARGO) fuzz run --sanitizer none $$t corpus/$$t -- -max_total_time=30 || exit 1; done

## Regenerate the committed TEST-ONLY PKI (seeded: byte-identical output).
certs:
	$(CARGO) run --locked -p itlsim-server --bin gen-test-pki -- certs

clean:
	$(CARGO) clean
