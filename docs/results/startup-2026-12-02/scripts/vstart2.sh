cd /work/main
for i in 1 2; do
  VLLM_USE_AOT_COMPILE=0 PYTHONPATH=$PWD .venv/bin/python /tmp/vstart.py > /tmp/vstart.aot0.$i.log 2>&1
  cp /tmp/vstart.server.log /tmp/vstart.aot0.$i.server.log
done
