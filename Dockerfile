# sluice container: a `deno compile` binary on distroless (glibc, no shell).
#   docker build -t sluice .
#   docker run --env-file .env -p 9003:9003 sluice
# The build stage needs network access to the npm registry (dependencies in
# deno.lock) and to Deno's release host (the `denort` base of deno compile).
ARG DENO_VERSION=2.9.6

FROM denoland/deno:debian-${DENO_VERSION} AS build
WORKDIR /src
COPY deno.json deno.lock ./
RUN deno install --frozen
COPY main.ts ./
COPY lib/ lib/
COPY sinks/ sinks/
RUN deno compile --frozen \
      --v8-flags=--max-semi-space-size=2 \
      --allow-net --allow-env --allow-read --allow-write --allow-sys \
      --include sinks/worker.ts \
      --output /out/sluice main.ts \
 && /out/sluice --version

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/sluice /usr/local/bin/sluice
# Relative DEAD_LETTER_FILE paths and a mounted .env resolve here.
WORKDIR /home/nonroot
EXPOSE 9003
USER nonroot
ENTRYPOINT ["/usr/local/bin/sluice"]
