# Firedeck: proxy settings from the config drive (written to /run at boot, never baked into the image).
if [ -r /run/firedeck/proxy.env ]; then
  set -a
  . /run/firedeck/proxy.env
  set +a
fi
