# included by include_main.py: the base image and compiler
Stage0 += baseimage(image='nvidia/cuda:11.8.0-devel-rockylinux8')
Stage0 += gnu(version='11')
