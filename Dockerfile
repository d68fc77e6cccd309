# The gift-lottery server's image: the steps of scripts/setup.sh (it runs that very script: a
# virtualenv in /app/.venv with requirements.txt's pinned packages), then the code. One image for
# both roles: `--role=web` (the default command) or `--role=scheduler`; MONGODB_URI and the other
# settings come from the environment (docs/deploy.md).
#
# Not buildable on this project's own machines: they reach no container registry, so the base
# image cannot be pulled there, and no test builds it. Build it where a registry is reachable.
FROM python:3.11-slim-bookworm

ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /app
RUN useradd --system --home-dir /app --shell /usr/sbin/nologin lottery

# Dependencies first, so a code change reuses this layer.
COPY requirements.txt ./
COPY scripts/setup.sh scripts/
RUN PYTHON=python3 scripts/setup.sh && rm -rf /root/.cache/pip

# Never fakes/: the local stand-ins of WeChat and WeChat Pay are for --dev/--demo, tests and
# benchmarks only (server.py imports them only on the --dev path).
COPY server.py config.py services.py ./
COPY handlers handlers/
COPY lottery lottery/
COPY notify notify/
COPY wechat wechat/
COPY wechatpay wechatpay/
COPY static static/
COPY templates templates/
# The console's uploaded images (--media_dir): mount a volume shared by every web process here.
RUN mkdir -p /app/media && chown lottery /app/media

USER lottery
EXPOSE 8888
ENTRYPOINT ["/app/.venv/bin/python", "server.py"]
CMD ["--role=web"]
