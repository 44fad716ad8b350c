# Container images. Needs docker or podman; the install steps inside are scripts/install.sh,
# which CI runs on every change (scripts/bootstrap.sh and tests/deploy), engine or not.
REGISTRY ?= ghcr.io/next-system
VERSION ?= 0.1.0
ENGINE ?= $(shell command -v docker || command -v podman)

IMAGES = next-tracer next-sampler next-sampler-local next-trainer next-controller

.PHONY: images $(IMAGES)
images: $(IMAGES)

define build
	@test -n "$(ENGINE)" || { echo "no container engine (docker or podman) on this machine"; exit 1; }
	$(ENGINE) build -f deploy/docker/$(1).Dockerfile $(2) -t $(REGISTRY)/$(3):$(VERSION) .
endef

next-tracer: ; $(call build,tracer,,next-tracer)
next-sampler: ; $(call build,sampler,--target sampler,next-sampler)
next-sampler-local: ; $(call build,sampler,--target sampler-local,next-sampler-local)
next-trainer: ; $(call build,trainer,,next-trainer)
next-controller: ; $(call build,controller,,next-controller)
