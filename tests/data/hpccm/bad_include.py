Stage0 += baseimage(image='ubuntu:22.04')
hpccm.include('no-such-part.py')
