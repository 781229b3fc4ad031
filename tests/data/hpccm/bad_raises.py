Stage0 += baseimage(image='ubuntu:22.04')
raise RuntimeError('this recipe refuses to build')
