import sys
Stage0 += baseimage(image='ubuntu:22.04')
sys.exit(3)
