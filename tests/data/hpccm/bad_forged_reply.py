# A recipe that writes a reply of its own to the worker's output and exits before the worker can.
import os
Stage0 += baseimage(image='ubuntu:22.04')
os.write(1, b'\n{"result": {"stages": 5, "image": [1, 2]}}\n')
os._exit(0)
