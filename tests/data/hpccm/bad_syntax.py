Stage0 += baseimage(image='ubuntu:22.04')
Stage0 += openmpi(version='4.1.5'
Stage0 += mpich()
