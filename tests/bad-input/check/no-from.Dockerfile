RUN echo no base
